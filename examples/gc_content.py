"""Per-sample GC content of FASTA files, one job per sample, then one summary job.

    python examples/gc_content.py [FASTA ...]

Each sample's job gets its FASTA file as a read-only mount and writes a one-line TSV;
the summary job mounts every sample's output collection and concatenates them. Run it
twice: the second time every job is reused and nothing runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cwl_crunch

# GC fraction of all sequence lines (headers start with '>').
GC_AWK = (
    '!/^>/ { n += length($0); gc += gsub(/[GCgc]/, "") } '
    'END { printf "%s\\t%d\\t%.4f\\n", name, n, (n ? gc / n : 0) }'
)


def main(fasta_paths: list[Path]) -> int:
    with cwl_crunch.connect() as cluster:
        per_sample = []
        for fasta in fasta_paths:
            pdh = cluster.put(fasta)
            sample = fasta.name.split(".")[0]
            per_sample.append(cluster.submit(
                ["awk", "-v", f"name={sample}", GC_AWK, f"in/{fasta.name}"],
                name=f"gc/{sample}", cores=0.5, stdout=f"out/{sample}.tsv",
                mounts={"in": cwl_crunch.CollectionMount(pdh)},
            ))
        cwl_crunch.wait_all(per_sample)
        mounts = {f"parts/{i}": cwl_crunch.CollectionMount(f.output)
                  for i, f in enumerate(per_sample)}
        summary = cluster.submit(
            ["sh", "-c", "printf 'sample\\tbases\\tgc\\n'; cat parts/*/*.tsv"],
            name="gc/summary", cores=0.25, stdout="out/gc_summary.tsv",
            mounts=mounts,
        )
        print(cluster.read_text(summary.output, "gc_summary.tsv"), end="")
        print(f"\noutput collection: {summary.output}")
        for future in [*per_sample, summary]:
            record = future.record()
            reused = f" (reused {record.reused_job_uuid})" if record.reused_job_uuid else ""
            print(f"{record.name:<12} {record.uuid} {record.state}{reused}")
        print(f"\nsee it: cwl-crunch jobs show {summary.uuid}")
    return 0


if __name__ == "__main__":
    default = sorted((Path(__file__).parent / "data").glob("*.fa"))
    sys.exit(main([Path(p) for p in sys.argv[1:]] or default))
