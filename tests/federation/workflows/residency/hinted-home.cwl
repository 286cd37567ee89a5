cwlVersion: v1.2
class: Workflow
doc: A step hinted to run at home on a cohort resident on a site.
$namespaces: {crunch: "http://cwl-crunch.org/cwl#"}
inputs:
  cohort: File
steps:
  count:
    run:
      class: CommandLineTool
      hints:
        crunch:RunOnCluster: {cluster_id: home0}
      baseCommand: [wc, -l]
      inputs:
        cohort: {type: File, inputBinding: {position: 1}}
      stdout: n.txt
      outputs:
        n: {type: stdout}
    in: {cohort: cohort}
    out: [n]
outputs:
  n: {type: File, outputSource: count/n}
