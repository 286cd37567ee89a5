cwlVersion: v1.2
class: Workflow
doc: GC content per sample (one step per FASTA file, in parallel), then a summary table.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  samples: File[]
steps:
  gc:
    run: gc_content.cwl
    scatter: fasta
    in:
      fasta: samples
    out: [table]
  summary:
    run: summarize.cwl
    in:
      rows: gc/table
    out: [summary]
outputs:
  per_sample:
    type: File[]
    outputSource: gc/table
  summary_table:
    type: File
    outputSource: summary/summary
