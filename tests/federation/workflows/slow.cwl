cwlVersion: v1.2
class: Workflow
doc: One slow step on the cluster its input names, then a quick one at home.
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
inputs:
  text: File
  where: string
  seconds: int
outputs:
  said: {type: File, outputSource: after/said}
steps:
  slow:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'sleep "$1" && cat "$0"']
      inputs:
        text: {type: File, inputBinding: {position: 1}}
        seconds: {type: int, inputBinding: {position: 2}}
      stdout: said.txt
      outputs:
        said: stdout
    in: {text: text, seconds: seconds, runOnCluster: where}
    out: [said]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
  after:
    run: tag.cwl
    in: {text: slow/said, tag: {valueFrom: after}}
    out: [said]
