cwlVersion: v1.2
class: Workflow
doc: Three tagged steps, each on the cluster its input names (Arvados' way of saying it).
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
inputs:
  text: File
  where1: string
  where2: string
  where3: string
outputs:
  said: {type: File, outputSource: three/said}
steps:
  one:
    run: tag.cwl
    in: {text: text, tag: {valueFrom: one}, runOnCluster: where1}
    out: [said]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
  two:
    run: tag.cwl
    in: {text: one/said, tag: {valueFrom: two}, runOnCluster: where2}
    out: [said]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
  three:
    run: tag.cwl
    in: {text: two/said, tag: {valueFrom: three}, runOnCluster: where3}
    out: [said]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
