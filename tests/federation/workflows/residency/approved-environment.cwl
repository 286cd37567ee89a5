cwlVersion: v1.2
class: CommandLineTool
doc: The approved image and command, with an environment variable no rule approves
  (PYTHONPATH could run other code under the approved command).
requirements:
  DockerRequirement: {dockerPull: localhost/meta-analysis-regress:1}
  EnvVarRequirement:
    envDef: {PYTHONPATH: /tmp}
baseCommand: [python3, /opt/regress.py]
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
arguments: [{position: 2, valueFrom: assoc.tsv}]
outputs:
  assoc: {type: File, outputBinding: {glob: assoc.tsv}}
