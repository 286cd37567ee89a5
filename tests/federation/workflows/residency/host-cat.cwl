cwlVersion: v1.2
class: CommandLineTool
doc: The cohort copied by a tool that only hints at a container (so, with --no-container,
  a step on the site's host).
hints:
  DockerRequirement: {dockerPull: docker.io/library/python:3-slim}
baseCommand: cat
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
stdout: copy.tsv
outputs:
  copy: {type: stdout}
