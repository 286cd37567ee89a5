cwlVersion: v1.2
class: CommandLineTool
doc: GC content of one FASTA file, as a one-line TSV (sample, bases, GC fraction).
baseCommand: awk
arguments:
  - -v
  - name=$(inputs.fasta.nameroot)
  - '!/^>/ { n += length($0); gc += gsub(/[GCgc]/, "") } END { printf "%s\t%d\t%.4f\n", name, n, (n ? gc / n : 0) }'
  - $(inputs.fasta.path)
inputs:
  fasta: File
stdout: $(inputs.fasta.nameroot).tsv
outputs:
  table: stdout
