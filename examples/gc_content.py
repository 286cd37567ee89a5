"""Per-sample GC content of FASTA files: a driver job, one child job per sample, a summary.

    python examples/gc_content.py [FASTA ...]

The program stores the FASTA files as one collection and submits itself as a job (the
driver, a quarter core), with that collection mounted: a job's token reads only what its
job was given or made, and a PDH on the command line gives nothing. Inside that job,
``cwl_crunch.connect()`` reaches the same cluster (through the API the cluster serves to
its jobs), so the jobs the driver submits become its children: one per sample (each gets
its FASTA file as a read-only mount and writes a one-line TSV) and a summary job that
mounts every sample's output. Run it twice: the second time every job is reused.
Then ``cwl-crunch jobs tree <driver uuid>`` shows what ran.
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


def drive(fasta_pdh: str) -> int:
    """Runs inside the driver job: fan out per sample, then summarize."""
    with cwl_crunch.connect() as cluster:
        samples = [entry.path for entry in cluster.client.list_collection(fasta_pdh)
                   if entry.kind == "file"]
        per_sample = []
        for fasta in samples:
            sample = Path(fasta).name.split(".")[0]
            per_sample.append(cluster.submit(
                ["awk", "-v", f"name={sample}", GC_AWK, f"in/{Path(fasta).name}"],
                name=f"gc/{sample}", cores=0.25, stdout=f"out/{sample}.tsv",
                mounts={f"in/{Path(fasta).name}": cwl_crunch.CollectionMount(fasta_pdh, fasta)},
            ))
        cwl_crunch.wait_all(per_sample)
        mounts = {f"parts/{i}": cwl_crunch.CollectionMount(f.output)
                  for i, f in enumerate(per_sample)}
        summary = cluster.submit(
            ["sh", "-c", "printf 'sample\\tbases\\tgc\\n'; cat parts/*/*.tsv"],
            name="gc/summary", cores=0.25, stdout="out/gc_summary.tsv", mounts=mounts,
        )
        Path("out").mkdir(exist_ok=True)
        Path("out/gc_summary.tsv").write_text(cluster.read_text(summary.output,
                                                                "gc_summary.tsv"))
    return 0


def main(fasta_paths: list[Path]) -> int:
    with cwl_crunch.connect() as cluster:
        fasta_pdh = cluster.put(*fasta_paths)
        driver = cluster.submit(
            [sys.executable, str(Path(__file__).resolve()), "--driver", fasta_pdh],
            name="gc", cores=0.25, mounts={"fasta": cwl_crunch.CollectionMount(fasta_pdh)},
        )
        record = driver.result()
        print(cluster.read_text(driver.output, "gc_summary.tsv"), end="")
        reused = f" (reused {record.reused_job_uuid})" if record.reused_job_uuid else ""
        print(f"\ndriver job {record.uuid} {record.state}{reused}")
        print(f"see what ran: cwl-crunch jobs tree {record.reused_job_uuid or record.uuid}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        sys.exit(drive(sys.argv[2]))
    default = sorted((Path(__file__).parent / "data").glob("*.fa"))
    sys.exit(main([Path(p) for p in sys.argv[1:]] or default))
