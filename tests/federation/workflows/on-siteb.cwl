cwlVersion: v1.2
class: Workflow
doc: The hint on the workflow (siteb); its second step says sitea for itself.
$namespaces:
  crunch: "http://cwl-crunch.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
hints:
  crunch:RunOnCluster: {cluster_id: siteb}
inputs:
  text: File
outputs:
  said: {type: File, outputSource: two/said}
steps:
  one:
    run: tag.cwl
    in: {text: text, tag: {valueFrom: one}}
    out: [said]
  two:
    run: tag.cwl
    in: {text: one/said, tag: {valueFrom: two}}
    out: [said]
    hints:
      crunch:RunOnCluster: {cluster_id: sitea}
