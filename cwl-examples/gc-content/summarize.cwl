cwlVersion: v1.2
class: CommandLineTool
doc: One table from the per-sample rows, with a header.
requirements:
  ShellCommandRequirement: {}
  InlineJavascriptRequirement: {}
inputs:
  rows: File[]
arguments:
  - shellQuote: false
    valueFrom: >-
      printf 'sample\tbases\tgc\n'; cat $(inputs.rows.map(function(f) { return f.path; }).join(" "))
stdout: gc_summary.tsv
outputs:
  summary: stdout
