cwlVersion: v1.2
class: CommandLineTool
doc: The approved image and command, with the cohort staged into the output directory
  (InitialWorkDirRequirement) and collected as an output.
requirements:
  DockerRequirement: {dockerPull: localhost/meta-analysis-regress:1}
  InitialWorkDirRequirement:
    listing: [$(inputs.cohort)]
baseCommand: [python3, /opt/regress.py]
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
arguments: [{position: 2, valueFrom: assoc.tsv}]
outputs:
  assoc: {type: File, outputBinding: {glob: assoc.tsv}}
  copy: {type: File, outputBinding: {glob: cohort.tsv}}
