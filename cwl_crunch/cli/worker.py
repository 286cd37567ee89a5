"""``cwl-crunch worker JOB_UUID``: run one job in this process.

This is how a batch system (SLURM) runs a job inside its allocation: with the job's own
token in ``CWL_CRUNCH_API_TOKEN`` it runs the job a dispatcher handed over, staging from
and storing into the store directory it shares with the server, and reports through the
API. Without a server it claims a queued job of the embedded cluster itself. Locally
the dispatcher runs the same worker code in a thread.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cwl_crunch.config import Config
from cwl_crunch.dispatch.slurm_commands import slurm_output_path
from cwl_crunch.model import Claim, ClusterClient, JobState

if TYPE_CHECKING:
    from cwl_crunch.worker.job_worker import JobWorker

SERVER_RESTART_PATIENCE = 600.0
"""Seconds a worker keeps trying to reach a server that refuses connections: its job
should outlive a restart of the server."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("worker", help="run one job in this process")
    parser.add_argument("uuid")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, config: Config) -> int:
    # Imports here, not at the top: each SLURM job starts this command, and the HTTP
    # side needs neither SQLAlchemy nor FastAPI (see cli.main).
    if config.api_url:
        return _run_handed_over(args.uuid, config)
    from cwl_crunch.core import ClusterCore, EmbeddedClient
    from cwl_crunch.server.job_api import JobApi
    from cwl_crunch.worker.isolation import Isolation
    from cwl_crunch.worker.processes import this_worker

    core = ClusterCore(config, job_api=JobApi)
    try:
        client = EmbeddedClient.over(core)
        claim = client.claim_job(args.uuid, this_worker())
        if claim is None:
            return _not_waiting(client, args.uuid, "not waiting to run")
        return _report(core.job_worker(Isolation.of(config)), claim)
    finally:
        core.close()


def _run_handed_over(uuid: str, config: Config) -> int:
    """The job a dispatcher claimed for this worker (its token is the job's)."""
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.containers import Engine, find_engine
    from cwl_crunch.records.blob_signing import manifest_signer
    from cwl_crunch.store import CollectionStore
    from cwl_crunch.worker.isolation import Isolation
    from cwl_crunch.worker.job_worker import JobWorker

    # The worker stores its job's output in the store itself: its client signs the
    # locators for the job's token (the server takes no unproven block).
    sign = manifest_signer(config.home, config.blob_signing_key, config.blob_signature_ttl,
                           config.api_token)
    with HttpClient(config, reconnect_for=SERVER_RESTART_PATIENCE, signer=sign) as client:
        record = client.get_job(uuid)
        if record.state != JobState.RUNNING:
            return _not_waiting(client, uuid, "not handed to a worker")
        engine_url = find_engine(config.container_engine)
        engine = Engine(engine_url) if engine_url else None
        try:
            # The job reaches the server as the job: its URL and the token (not the
            # shared directories this worker was given: see worker.job_environment).
            # A server's job on a node: isolated as the server's own would be.
            worker = JobWorker(client, CollectionStore(config.store), config.work,
                               lambda: config.api_url, engine=engine,
                               isolation=Isolation.of(config, required=True))
            status = _report(worker, Claim(record, config.api_token))
        finally:
            if engine is not None:
                engine.close()
    # Reported: what SLURM kept of this worker's output is of no more use.
    slurm_output_path(config.work, uuid).unlink(missing_ok=True)
    return status


def _report(worker: JobWorker, claim: Claim) -> int:
    record = worker.run(claim)
    print(f"{record.uuid} {record.state}")
    return 0 if record.succeeded else 1


def _not_waiting(client: ClusterClient, uuid: str, what: str) -> int:
    job = client.get_job(uuid)
    print(f"job {job.uuid} is {job.state}, {what}", file=sys.stderr)
    return 1
