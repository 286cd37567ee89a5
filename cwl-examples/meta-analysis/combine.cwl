cwlVersion: v1.2
class: CommandLineTool
doc: Fixed-effect inverse-variance meta-analysis of the sites' results, at home.
requirements:
  DockerRequirement:
    dockerPull: docker.io/library/python:3-slim
baseCommand: python3
inputs:
  script:
    type: File
    inputBinding: {position: 1}
  results:
    type: File[]
    inputBinding: {position: 2}
outputs:
  meta:
    type: File
    outputBinding: {glob: meta.tsv}
  top_variants:
    type: File
    outputBinding: {glob: top_variants.tsv}
  manhattan:
    type: File
    outputBinding: {glob: manhattan.png}
