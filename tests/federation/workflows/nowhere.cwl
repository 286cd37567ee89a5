cwlVersion: v1.2
class: Workflow
doc: A step hinted to a cluster that is not a peer.
$namespaces:
  crunch: "http://cwl-crunch.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
inputs:
  text: File
outputs: []
steps:
  one:
    run: tag.cwl
    in: {text: text, tag: {valueFrom: one}}
    out: [said]
    hints:
      crunch:RunOnCluster: {cluster_id: sitez}
