cwlVersion: v1.2
class: Workflow
doc: |
  Arvados' federated example, as its docs write it: one shard per cluster
  (arv:ClusterTarget from a step input the tool does not declare), gathered at home.
$namespaces:
  arv: "http://arvados.org/cwl#"
requirements:
  ScatterFeatureRequirement: {}
inputs:
  texts: File[]
  clusters: string[]
outputs:
  all: {type: File, outputSource: gather/all}
steps:
  shard:
    in:
      text: texts
      tag: clusters
      runOnCluster: clusters
    scatter: [text, tag, runOnCluster]
    scatterMethod: dotproduct
    hints:
      arv:ClusterTarget:
        cluster_id: $(inputs.runOnCluster)
    out: [said]
    run: tag.cwl
  gather:
    in: {parts: shard/said}
    out: [all]
    run:
      class: CommandLineTool
      baseCommand: cat
      inputs:
        parts: {type: 'File[]', inputBinding: {position: 1}}
      stdout: all.txt
      outputs:
        all: stdout
