cwlVersion: v1.2
class: Workflow
doc: >
  A step on the cluster `where1` makes a large file and a small one; the next step, on
  `where2`, reads the small one only. The large one never has to travel.
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  StepInputExpressionRequirement: {}
inputs:
  where1: string
  where2: string
outputs:
  said: {type: File, outputSource: read/said}
steps:
  make:
    run:
      class: CommandLineTool
      baseCommand: [sh, -c, 'head -c 3145728 /dev/urandom > big.bin && echo small > small.txt']
      inputs: []
      outputs:
        big: {type: File, outputBinding: {glob: big.bin}}
        small: {type: File, outputBinding: {glob: small.txt}}
    in: {runOnCluster: where1}
    out: [big, small]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
  read:
    run: tag.cwl
    in: {text: make/small, tag: {valueFrom: read}, runOnCluster: where2}
    out: [said]
    hints:
      arv:ClusterTarget: {cluster_id: $(inputs.runOnCluster)}
