cwlVersion: v1.2
class: CommandLineTool
doc: The approved image, with a command its rule does not name.
requirements:
  DockerRequirement: {dockerPull: localhost/meta-analysis-regress:1}
baseCommand: [cp]
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
arguments: [{position: 2, valueFrom: copy.tsv}]
outputs:
  copy: {type: File, outputBinding: {glob: copy.tsv}}
