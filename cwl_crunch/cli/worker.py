"""``cwl-crunch worker JOB_UUID``: claim one queued job and run it in this process.

This is how a batch system (SLURM) runs a job inside its allocation; locally the
dispatcher runs the same worker code in a thread.
"""

from __future__ import annotations

import argparse
import sys

from cwl_crunch.client.embedded import EmbeddedClient, cluster_environment
from cwl_crunch.config import Config
from cwl_crunch.dispatch.processes import this_worker
from cwl_crunch.worker.job_worker import JobWorker


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("worker", help="run one queued job in this process")
    parser.add_argument("uuid")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    with EmbeddedClient(config) as client:
        claim = client.claim_job(args.uuid, this_worker())
        if claim is None:
            job = client.get_job(args.uuid)
            print(f"job {job.uuid} is {job.state}, not waiting to run", file=sys.stderr)
            return 1
        worker = JobWorker(client, client.store, config.work, cluster_environment(config),
                           engine=client.engine)
        record = worker.run(claim)
        print(f"{record.uuid} {record.state}")
        return 0 if record.succeeded else 1
