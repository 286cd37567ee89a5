cwlVersion: v1.2
class: CommandLineTool
doc: >
  Runs on siteb in an image that siteb's engine may not have: its input's text, then
  the Debian release the image holds.
$namespaces:
  crunch: "http://cwl-crunch.org/cwl#"
requirements:
  DockerRequirement: {dockerPull: "docker.io/debian:stable-slim"}
hints:
  crunch:RunOnCluster: {cluster_id: siteb}
baseCommand: [sh, -c, 'cat "$0" && cat /etc/debian_version']
inputs:
  text: {type: File, inputBinding: {position: 1}}
stdout: said.txt
outputs:
  said: stdout
