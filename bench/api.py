"""The HTTP API: submissions per second, and a scatter through the server.

    python bench/api.py [--clients 8] [--jobs 2000] [--postgres URL] [--scatter 500]

- 8 clients (threads, each its own HttpClient) submit distinct jobs (`reuse=False`,
  `true`) as fast as they can against a server on a fresh SQLite home, and against
  PostgreSQL with --postgres; jobs per second accepted by the API (the dispatcher runs
  them meanwhile).
- A scatter of N trivial steps with `cwl-crunch-runner --cluster URL` (the runner here,
  steps on the server) against `cwltool --parallel --no-container`, same run.
Prints figures and ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cwl_crunch.client import JobFilter, JobSpec
from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.server.serve import ServerThread

sys.path.insert(0, str(Path(__file__).parent))
from runner import SCATTER_WF  # the same workflow as bench/runner.py


def submissions(home: Path, clients: int, jobs: int, database_url: str = "") -> float:
    config = load_config(home=home, database_url=database_url, poll_interval=0.05)
    with ServerThread(config, dispatch_in_child=True) as server:
        token = server.create_token()
        per_client = jobs // clients
        barrier = threading.Barrier(clients + 1)
        errors: list[BaseException] = []

        def submit_many(index: int) -> None:
            client = HttpClient(config.replace(api_url=server.url, api_token=token))
            try:
                barrier.wait()
                for number in range(per_client):
                    client.submit(JobSpec(("true", f"{index}-{number}"), reuse=False,
                                          cores=0.01))
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                client.close()

        threads = [threading.Thread(target=submit_many, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        live = JobFilter(states=frozenset({"Queued", "Running"}), limit=100_000)
        for job in server.core.list_jobs(live):
            server.core.cancel(job.uuid)
    if errors:
        sys.exit(f"submission failed: {errors[0]}")
    return per_client * clients / elapsed


def scatter(work: Path, n: int) -> None:
    wf = work / "scatter.cwl"
    wf.write_text(SCATTER_WF)
    job = work / f"words-{n}.yml"
    job.write_text("words:\n" + "".join(f"  - w{i}\n" for i in range(n)))
    config = load_config(home=work / "server-home", poll_interval=0.05)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CWL_CRUNCH_")}
    with ServerThread(config, dispatch_in_child=True) as server:
        env.update(CWL_CRUNCH_HOME=str(work / "client-home"),
                   CWL_CRUNCH_API_TOKEN=server.create_token())
        ours = _timed(["cwl-crunch-runner", "--quiet", "--cluster", server.url, "--outdir",
                       str(work / "c"), str(wf), str(job)], env)
    theirs = _timed(["cwltool", "--quiet", "--parallel", "--no-container", "--outdir",
                     str(work / "t"), str(wf), str(job)], env)
    print(f"scatter {n} through the server: cwl-crunch-runner --cluster {ours:.2f} s, "
          f"cwltool --parallel --no-container {theirs:.2f} s (ratio {ours / theirs:.2f}x; "
          "target <= 3x)")


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL database")
    parser.add_argument("--scatter", type=int, default=500, help="0 to skip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        rate = submissions(work / "sqlite", args.clients, args.jobs)
        print(f"submissions, {args.clients} clients, SQLite: {rate:.0f} jobs/s")
        if args.postgres:
            rate = submissions(work / "pg", args.clients, args.jobs, args.postgres)
            print(f"submissions, {args.clients} clients, PostgreSQL: {rate:.0f} jobs/s")
        if args.scatter:
            scatter(work, args.scatter)
    return 0


if __name__ == "__main__":
    sys.exit(main())
