cwlVersion: v1.2
class: CommandLineTool
doc: The cohort copied into the output, in an image no rule approves.
requirements:
  DockerRequirement: {dockerPull: docker.io/library/python:3-slim}
baseCommand: cat
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
stdout: copy.tsv
outputs:
  copy: {type: stdout}
