cwlVersion: v1.2
class: CommandLineTool
doc: An output that is the resident input itself (which 0) or its secondary file (1).
requirements:
  InlineJavascriptRequirement: {}
  DockerRequirement: {dockerPull: docker.io/library/python:3-slim}
baseCommand: "true"
inputs:
  cohort:
    type: File
    secondaryFiles: [.idx]
  which: {type: int, default: 0}
outputs:
  same:
    type: File
    outputBinding:
      outputEval: $([inputs.cohort, inputs.cohort.secondaryFiles[0]][inputs.which])
