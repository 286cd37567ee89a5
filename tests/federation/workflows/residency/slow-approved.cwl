cwlVersion: v1.2
class: CommandLineTool
doc: An approved image and command (sh -c, by a rule of the test), slow enough to
  remove the rule while it runs; it writes its delay and a line count only.
requirements:
  DockerRequirement: {dockerPull: localhost/meta-analysis-regress:1}
baseCommand: [sh, -c]
arguments:
  - position: 1
    valueFrom: "sleep $(inputs.seconds); echo $(inputs.seconds) `wc -l < $(inputs.cohort.path)` > n.txt"
inputs:
  cohort: File
  seconds: int
outputs:
  n: {type: File, outputBinding: {glob: n.txt}}
