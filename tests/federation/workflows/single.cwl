cwlVersion: v1.2
class: Workflow
doc: A two-step subworkflow run as one job (and, with where, on that cluster).
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  SubworkflowFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  text: File
  where: string
outputs:
  said: {type: File, outputSource: after/said}
steps:
  both:
    in: {text: text, runOnCluster: where}
    out: [said]
    hints:
      arv:RunInSingleContainer: {}
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
    run:
      class: Workflow
      inputs: {text: File}
      outputs:
        said: {type: File, outputSource: second/said}
      steps:
        first:
          run: tag.cwl
          in: {text: text, tag: {valueFrom: first}}
          out: [said]
          hints:
            ResourceRequirement: {coresMin: 1, ramMin: 300}
        second:
          run: tag.cwl
          in: {text: first/said, tag: {valueFrom: second}}
          out: [said]
          hints:
            ResourceRequirement: {coresMin: 0.5, ramMin: 500}
  after:
    run: tag.cwl
    in: {text: both/said, tag: {valueFrom: after}}
    out: [said]
