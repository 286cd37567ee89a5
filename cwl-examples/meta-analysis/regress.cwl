cwlVersion: v1.2
class: CommandLineTool
doc: |
  Per-variant regression of one cohort, on the site that holds it. No RunOnCluster
  hint: the cohort is resident on its site, so the step runs there. The image and this
  command are what each site approved (cwl-crunch release add), so the table of
  effect sizes may leave the site; nothing else derived from the cohort may.
requirements:
  DockerRequirement:
    dockerPull: localhost/meta-analysis-regress:1
baseCommand: [python3, /opt/regress.py]
inputs:
  cohort:
    type: File
    inputBinding: {position: 1}
arguments:
  - {position: 2, valueFrom: assoc.tsv}
outputs:
  assoc:
    type: File
    outputBinding: {glob: assoc.tsv}
