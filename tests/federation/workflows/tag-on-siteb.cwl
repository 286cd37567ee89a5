cwlVersion: v1.2
class: CommandLineTool
doc: tag.cwl with the hint on the tool itself.
$namespaces:
  crunch: "http://cwl-crunch.org/cwl#"
hints:
  crunch:RunOnCluster:
    cluster_id: siteb
baseCommand: [sh, -c, 'cat "$0" && echo "$1"']
inputs:
  text: {type: File, inputBinding: {position: 1}}
  tag: {type: string, inputBinding: {position: 2}}
stdout: said.txt
outputs:
  said: stdout
