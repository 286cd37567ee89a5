"""Running one claimed job end to end. The only code that runs a job's command.

The same worker runs in a thread of the local dispatcher and, for SLURM, as the
``cwl-crunch worker`` command inside an allocation. Host layout of one run::

    <work>/<job uuid>/job/    the job directory: mounts, output dir, working dir
    <work>/<job uuid>/logs/   stdout.txt, stderr.txt, worker.txt -> the log collection
    <work>/<job uuid>/tmp/    TMPDIR
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import traceback
from collections.abc import Mapping
from pathlib import Path

from cwl_crunch.client.base import Claim, ClusterClient, JobOutcome, JobRecord
from cwl_crunch.dispatch.processes import terminate_group
from cwl_crunch.errors import CrunchError
from cwl_crunch.records import states
from cwl_crunch.store import CollectionStore
from cwl_crunch.worker.joblog import JobLog
from cwl_crunch.worker.process import run_command
from cwl_crunch.worker.staging import prepare_dirs, stage_mounts

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class JobWorker:
    def __init__(
        self,
        client: ClusterClient,
        store: CollectionStore,
        work_root: Path,
        cluster_environment: Mapping[str, str],
    ) -> None:
        """``cluster_environment`` lets the job's own programs reach this cluster."""
        self._client = client
        self._store = store
        self._work_root = work_root
        self._cluster_environment = dict(cluster_environment)

    def run(self, claim: Claim) -> JobRecord:
        job = claim.job
        host_dir = self._work_root / job.uuid
        log_dir = host_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = JobLog(log_dir / "worker.txt")
        try:
            outcome = self._run_logged(claim, host_dir, log)
        except Exception as error:
            log.write("worker error:\n" + traceback.format_exc())
            outcome = JobOutcome(states.FAILED, None, None, None, f"worker error: {error}")
        finally:
            log.close()
        log_pdh = self._store.ingest_dir(log_dir, move=True)
        record = self._client.finish_job(job.uuid, dataclasses.replace(outcome, log_pdh=log_pdh))
        shutil.rmtree(host_dir, ignore_errors=True)
        return record

    def _run_logged(self, claim: Claim, host_dir: Path, log: JobLog) -> JobOutcome:
        job, spec = claim.job, claim.job.spec
        job_dir = host_dir / "job"
        log.write(f"job {job.uuid} ({job.name or 'unnamed'}) on pid {os.getpid()}")
        try:
            job_dir.mkdir(exist_ok=True)
            stage_mounts(spec, job_dir, self._store)
            prepare_dirs(spec, job_dir)
        except (CrunchError, OSError) as error:
            log.write(f"staging failed: {error}")
            return JobOutcome(states.FAILED, None, None, None, f"staging failed: {error}")
        environment = self._environment(claim, host_dir)
        log.write(f"running: {shlex.join(spec.command)}")
        result = run_command(spec, job_dir, host_dir / "logs", environment,
                             on_started=lambda pgid, ticks: self._started(job, pgid, ticks))
        if spec.stdout:
            _keep_copy(job_dir / spec.stdout, host_dir / "logs" / "stdout.txt")
        if spec.stderr:
            _keep_copy(job_dir / spec.stderr, host_dir / "logs" / "stderr.txt")
        # A cancelled job's command was killed: finish_job records it as Cancelled.
        if result.failure:
            log.write(result.failure)
            return JobOutcome(states.FAILED, result.exit_code, None, None, result.failure)
        log.write(f"exit code {result.exit_code}")
        output_pdh = self._store.ingest_dir(job_dir / spec.output_path, move=True)
        log.write(f"output {output_pdh}")
        return JobOutcome(states.COMPLETE, result.exit_code, output_pdh, None)

    def _started(self, job: JobRecord, pgid: int, ticks: int) -> None:
        if self._client.set_job_process(job.uuid, pgid, ticks):
            # Cancelled before the canceller could see this process group: stop it here.
            terminate_group(pgid, ticks)

    def _environment(self, claim: Claim, host_dir: Path) -> dict[str, str]:
        spec = claim.job.spec
        tmp = host_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        environment = {
            "PATH": os.environ.get("PATH", DEFAULT_PATH),
            "HOME": str(host_dir / "job" / spec.cwd),
            "TMPDIR": str(tmp),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        environment.update(spec.environment)
        environment.update(self._cluster_environment)
        environment["CWL_CRUNCH_API_TOKEN"] = claim.token
        return environment


def _keep_copy(source: Path, dest: Path) -> None:
    """Put a redirected stream in the log collection too (a link: no data copied)."""
    if not source.is_file():
        return
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def salvage_logs(store: CollectionStore, work_root: Path, job_uuid: str) -> str | None:
    """Store what a dead worker left in its log dir, then remove its host dir."""
    host_dir = work_root / job_uuid
    log_dir = host_dir / "logs"
    pdh = store.ingest_dir(log_dir, move=True) if log_dir.is_dir() else None
    shutil.rmtree(host_dir, ignore_errors=True)
    return pdh
