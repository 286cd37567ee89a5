"""Per-job overhead of the embedded cluster against plain subprocess, in one run.

    python bench/jobs.py [--jobs 1000] [--parallel 2]

1. N trivial commands (`true i`) with plain subprocess, `--parallel` at a time.
2. The same N commands submitted through the SDK (1 core each, so `--parallel` run at once
   on a machine with that many cores) and waited for.
3. The same N submitted again: every one is reused, nothing runs.
Targets (issue 2): overhead at most 5 ms per job above plain subprocess; the reused run
at most 10% of the first run's time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cwl_crunch


def plain_subprocess(commands: list[list[str]], parallel: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda command: subprocess.run(command, check=True), commands))
    return time.perf_counter() - start


def through_cluster(cluster: cwl_crunch.Cluster, commands: list[list[str]]) -> float:
    start = time.perf_counter()
    futures = [cluster.submit(command, cores=1.0, ram=64 << 20) for command in commands]
    records = cwl_crunch.wait_all(futures)
    elapsed = time.perf_counter() - start
    failed = [r.uuid for r in records if not r.succeeded]
    if failed:
        sys.exit(f"{len(failed)} jobs failed, e.g. {failed[0]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    commands = [["true", str(i)] for i in range(args.jobs)]
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as home:
        cluster = cwl_crunch.connect(home=Path(home), max_cores=float(args.parallel))
        with cluster:
            baseline = plain_subprocess(commands, args.parallel)
            first = through_cluster(cluster, commands)
            again = through_cluster(cluster, commands)
            reused = sum(1 for r in cluster.client.list_jobs(
                cwl_crunch.client.JobFilter(limit=2 * args.jobs)) if r.reused_job_uuid)
    overhead_ms = (first - baseline) / args.jobs * 1000
    print(f"{args.jobs} jobs of `true`, {args.parallel} at a time")
    print(f"{'plain subprocess':<28}{baseline:8.2f} s  {baseline / args.jobs * 1000:6.2f} ms/job")
    print(f"{'cwl-crunch (runs)':<28}{first:8.2f} s  {first / args.jobs * 1000:6.2f} ms/job")
    print(f"{'cwl-crunch (all reused)':<28}{again:8.2f} s  {again / args.jobs * 1000:6.2f} ms/job"
          f"  ({reused} reused records)")
    print(f"overhead per job: {overhead_ms:.2f} ms (target <= 5 ms: "
          f"{'met' if overhead_ms <= 5 else 'MISSED'})")
    print(f"ratio cwl-crunch / subprocess: {first / baseline:.2f}x")
    print(f"reused run / first run: {again / first:.1%} (target <= 10%: "
          f"{'met' if again <= 0.1 * first else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
