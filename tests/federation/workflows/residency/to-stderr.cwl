cwlVersion: v1.2
class: CommandLineTool
doc: The cohort written to stderr (so into the step's log collection).
requirements:
  DockerRequirement: {dockerPull: docker.io/library/python:3-slim}
  ShellCommandRequirement: {}
arguments:
  - {valueFrom: "cat", shellQuote: false}
  - {valueFrom: $(inputs.cohort.path), shellQuote: true}
  - {valueFrom: ">&2; echo done > done.txt", shellQuote: false}
inputs:
  cohort: File
outputs:
  done: {type: File, outputBinding: {glob: done.txt}}
