cwlVersion: v1.2
class: Workflow
doc: A remote step's file becomes part of a home step's output (its blocks come home).
$namespaces:
  crunch: "http://cwl-crunch.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
inputs:
  text: File
outputs:
  kept: {type: File, outputSource: home/kept}
steps:
  remote:
    run: tag.cwl
    in: {text: text, tag: {valueFrom: remote}}
    out: [said]
    hints:
      crunch:RunOnCluster: {cluster_id: sitec}
  home:
    run:
      class: CommandLineTool
      requirements:
        InitialWorkDirRequirement:
          listing: [$(inputs.file)]
      baseCommand: "true"
      inputs:
        file: File
      outputs:
        kept: {type: File, outputBinding: {glob: $(inputs.file.basename)}}
    in: {file: remote/said}
    out: [kept]
