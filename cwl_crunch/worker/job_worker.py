"""Running one claimed job end to end. The only code that runs a job's command.

A run has two halves around the command: :meth:`JobWorker.start` (job dir, mounts,
environment, start the command) and :meth:`JobWorker.complete` (collect the output and
logs, record the end). The local dispatcher calls the halves from its event loop so one
thread can run many jobs; ``cwl-crunch worker UUID`` (inside a SLURM allocation) calls
:meth:`JobWorker.run`, which waits in between. Host layout of one run::

    <work>/<job uuid>/job/    the job directory: mounts, output dir, working dir
    <work>/<job uuid>/logs/   stdout.txt, stderr.txt, worker.txt -> the log collection
    <work>/<job uuid>/tmp/    TMPDIR
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from cwl_crunch.containers import Engine
from cwl_crunch.containers.plan import container_root
from cwl_crunch.errors import CrunchError, OutsideJobDirectory
from cwl_crunch.model import Claim, ClusterClient, EndReason, JobOutcome, JobRecord, JobState
from cwl_crunch.store import CollectionStore, confined_root, is_within
from cwl_crunch.worker.in_container import (
    container_failure,
    remove_leftovers,
    supervisor_command,
)
from cwl_crunch.worker.isolation import Isolation, isolation_problem
from cwl_crunch.worker.job_dirs import JobDirs
from cwl_crunch.worker.job_environment import job_environment
from cwl_crunch.worker.joblog import JobLog
from cwl_crunch.worker.process import (
    ProcessResult,
    StartedCommand,
    start_command,
    wait_command,
)
from cwl_crunch.worker.processes import terminate_group
from cwl_crunch.worker.rooted import path_inside, remap_root_links
from cwl_crunch.worker.staging import (
    LinkSnapshot,
    linked_inputs,
    modified_inputs,
    prepare_dirs,
    stage_mounts,
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclasses.dataclass
class JobRun:
    """One job between start and complete."""

    claim: Claim
    host_dir: Path
    log: JobLog
    command: StartedCommand | None = None
    early_outcome: JobOutcome | None = None
    """Set when the job ended before its command ran (staging failed, cannot start)."""
    deadline: float | None = None
    """time.monotonic() at which the time limit is reached."""
    kill_at: float | None = None
    """After SIGTERM for the time limit: when to SIGKILL what is left."""
    inputs: LinkSnapshot = dataclasses.field(default_factory=dict)
    """Identity of the inputs linked from the store, to notice a job writing into one."""
    survivors_possible: bool = False
    """The command ran unisolated: a process it left could still write its files, so
    they are copied into the store, not moved (hard-linked)."""

    @property
    def uuid(self) -> str:
        return self.claim.job.uuid


class JobWorker:
    def __init__(
        self,
        client: ClusterClient,
        store: CollectionStore,
        work_root: Path,
        api_url: Callable[[], str | None],
        *,
        recycle_dirs: bool = False,
        engine: Engine | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        """``api_url`` says, at each job's start, where the job's own programs reach
        this cluster (an embedded cluster starts serving its API at its first job; see
        worker.job_environment); ``recycle_dirs`` keeps emptied host directories for the
        next jobs (a long-lived process running many jobs); ``engine`` runs the jobs
        that have an image; ``isolation``: how commands are kept from the cluster's own
        state (default: in namespaces of their own, hiding nothing; see
        worker/isolation.py)."""
        self.client = client
        self.engine = engine
        self._store = store
        self._dirs = JobDirs(work_root, pooled=recycle_dirs)
        self._api_url = api_url
        self._isolation = isolation or Isolation()

    def run(self, claim: Claim) -> JobRecord:
        """Start, wait for and complete one job in this thread."""
        job_run = self.start(claim)
        result = None
        if job_run.command is not None:
            result = wait_command(job_run.command, claim.job.spec.time_limit)
        return self.complete(job_run, result)

    def start(self, claim: Claim) -> JobRun:
        """Make the job dir, stage mounts, start the command. Never raises for the job's
        own faults: those become ``early_outcome``."""
        host_dir = self._dirs.acquire(claim.job.uuid)
        job_run = JobRun(claim, host_dir, JobLog(host_dir / "logs" / "worker.txt"))
        try:
            self._start(job_run)
        except Exception as error:  # noqa: BLE001 - the worker must report every job's end
            job_run.log.write("worker error:\n" + traceback.format_exc())
            job_run.early_outcome = _failed(f"worker error: {error}")
        return job_run

    def _start(self, job_run: JobRun) -> None:
        job, spec, log = job_run.claim.job, job_run.claim.job.spec, job_run.log
        job_dir = job_run.host_dir / "job"
        log.write(f"job {job.uuid} ({job.name or 'unnamed'}) on pid {os.getpid()}")
        try:
            stage_mounts(spec, job_dir, self._store)
            prepare_dirs(spec, job_dir)
            job_run.inputs = linked_inputs(spec, job_dir)
        except (CrunchError, OSError) as error:
            log.write(f"staging failed: {error}")
            job_run.early_outcome = _failed(f"staging failed: {error}")
            return
        environment = self._environment(job_run)
        supervisor = None
        if job.image_digest is not None:
            try:
                supervisor = supervisor_command(job, self.engine, job_run.host_dir,
                                                environment)
            except CrunchError as error:
                log.write(str(error))
                job_run.early_outcome = _failed(str(error))
                return
            log.write(f"image: {spec.image} ({job.image_digest})")
        hidden = None
        if supervisor is None:  # a container is a PID and mount namespace of its own
            hidden = self._hidden(job_run)
            if job_run.early_outcome is not None:
                return
        log.write(f"running: {shlex.join(spec.command)}")
        started = start_command(spec, job_dir, job_run.host_dir / "logs", environment,
                                supervisor=supervisor, hidden=hidden)
        if isinstance(started, ProcessResult):
            log.write(started.failure or "cannot start")
            job_run.early_outcome = _failed(started.failure or "cannot start")
            return
        job_run.command = started
        if spec.time_limit is not None:
            job_run.deadline = time.monotonic() + spec.time_limit
        if self.client.set_job_process(job.uuid, started.process.pid, started.ticks):
            # Cancelled before the canceller could see this process group: stop it here.
            terminate_group(started.process.pid, started.ticks)

    def _hidden(self, job_run: JobRun) -> tuple[Path, ...] | None:
        """What to hide from the isolated command; None: it runs unisolated (its log says
        so), or (a server's worker) not at all."""
        if not self._isolation.enabled:
            why = 'the config says isolation = "none"'
        else:
            problem = isolation_problem()
            if problem is None:
                return self._isolation.hidden
            if self._isolation.required:
                reason = f"this worker cannot isolate jobs: {problem}"
                job_run.log.write(reason)
                job_run.early_outcome = _failed(reason)
                return None
            why = problem
        job_run.log.write(f"not isolated: {why}. Processes it leaves behind may outlive it "
                          "and it can reach this cluster's files; its outputs are copied "
                          "into the store")
        job_run.survivors_possible = True
        return None

    def complete(self, job_run: JobRun, result: ProcessResult | None) -> JobRecord:
        """Collect outputs and logs of a job whose command ended (or never ran)."""
        replaced = _replaced_dir(job_run.host_dir)
        try:
            if job_run.claim.job.image_digest is not None:
                remove_leftovers(self.engine, job_run.uuid, job_run.log)
            outcome = _failed(replaced) if replaced else (
                job_run.early_outcome or self._collect(job_run, result))
        except Exception as error:  # noqa: BLE001 - the worker must report every job's end
            job_run.log.write("worker error:\n" + traceback.format_exc())
            outcome = _failed(f"worker error: {error}")
        finally:
            job_run.log.close()
        log_dir = job_run.host_dir / "logs"
        log_pdh = None if replaced else self._store.ingest_dir(
            log_dir, move=not job_run.survivors_possible, confine=log_dir)
        # ``store`` is the fast path: the store directory this worker shares with its
        # cluster. The cluster learns of what was put there through the client, as of
        # anything else (a server's SLURM worker signs the locators: see cli.worker).
        for pdh in (outcome.output_pdh, log_pdh):
            if pdh is not None:
                self.client.put_manifest(self._store.manifest_text(pdh))
        record = self.client.finish_job(
            job_run.uuid, dataclasses.replace(outcome, log_pdh=log_pdh))
        self._dirs.release(job_run.host_dir)
        return record

    def _collect(self, job_run: JobRun, result: ProcessResult | None) -> JobOutcome:
        spec, log = job_run.claim.job.spec, job_run.log
        job_dir, log_dir = job_run.host_dir / "job", job_run.host_dir / "logs"
        assert result is not None, "a started command always has a result"
        if spec.stdout:
            _keep_copy(job_dir / spec.stdout, log_dir / "stdout.txt", job_dir)
        if spec.stderr:
            _keep_copy(job_dir / spec.stderr, log_dir / "stderr.txt", job_dir)
        modified = modified_inputs(job_run.inputs, job_dir)
        if modified:
            reason = (f"the job wrote into its read-only input {', '.join(modified)} (a link "
                      "to the store: that stored block is now damaged; put the original "
                      "again to repair it)")
            log.write(reason)
            return JobOutcome(JobState.FAILED, result.exit_code, None, None, reason,
                              EndReason.EXIT)
        failure = container_failure(log_dir) if job_run.claim.job.image_digest else None
        if failure:
            log.write(failure)
            return JobOutcome(JobState.FAILED, None, None, None, failure, EndReason.ERROR)
        # A cancelled job's command was killed: finish_job records it as Cancelled.
        if result.failure:
            log.write(result.failure)
            return JobOutcome(JobState.FAILED, result.exit_code, None, None, result.failure,
                              EndReason.TIME_LIMIT if result.timed_out else EndReason.ERROR)
        log.write(f"exit code {result.exit_code}")
        root = self._root(job_run)
        try:
            # Checked before remap_root_links too: it rewrites links in the output dir.
            output_dir = confined_root(job_dir / spec.output_path, job_dir)
            if root is not None:
                remap_root_links(output_dir, {root: "", **spec.binds}, job_dir)
            output_pdh = self._store.ingest_dir(output_dir, move=not job_run.survivors_possible,
                                                confine=job_dir)
        except OutsideJobDirectory as error:
            log.write(str(error))
            return JobOutcome(JobState.FAILED, result.exit_code, None, None, str(error),
                              EndReason.EXIT)
        log.write(f"output {output_pdh}")
        return JobOutcome(JobState.COMPLETE, result.exit_code, output_pdh, None, None,
                          EndReason.EXIT)

    @staticmethod
    def _root(job_run: JobRun) -> str | None:
        """Where the command sees its job dir; None: at its host path."""
        if job_run.claim.job.image_digest is not None:
            return container_root(job_run.claim.job.spec)
        return job_run.claim.job.spec.root

    def _environment(self, job_run: JobRun) -> dict[str, str]:
        spec = job_run.claim.job.spec
        root = self._root(job_run)
        if root is None:
            home, tmp = str(job_run.host_dir / "job" / spec.cwd), str(job_run.host_dir / "tmp")
        else:
            # Seen through the root: a tmp/ inside the job dir, not the host's.
            (job_run.host_dir / "job" / "tmp").mkdir(exist_ok=True)
            home, tmp = path_inside(root, spec.cwd), path_inside(root, "tmp")
        environment = {"HOME": home, "TMPDIR": tmp}
        if job_run.claim.job.image_digest is None:  # an image brings its own
            environment["PATH"] = os.environ.get("PATH", DEFAULT_PATH)
            environment["LANG"] = os.environ.get("LANG", "C.UTF-8")
        environment.update(spec.environment)
        environment.update(job_environment(self._api_url(), job_run.claim.token))
        return environment


def _failed(reason: str) -> JobOutcome:
    return JobOutcome(JobState.FAILED, None, None, None, reason, EndReason.ERROR)


def _keep_copy(source: Path, dest: Path, job_dir: Path) -> None:
    """Put a redirected stream in the log collection too (a link: no data copied).

    Only a regular file in the job dir: the job may have replaced its stdout file by a
    symlink to someone else's file, which must neither be linked nor end up in the logs.
    """
    real = os.path.realpath(source)
    if not is_within(real, os.path.realpath(job_dir)) or not os.path.isfile(real):
        return
    dest.unlink(missing_ok=True)
    try:
        os.link(real, dest, follow_symlinks=False)
    except OSError:
        shutil.copyfile(real, dest, follow_symlinks=False)


def _replaced_dir(host_dir: Path) -> str | None:
    """Why the host layout cannot be trusted (the job replaced a directory of it by a
    symlink: ingest and cleanup would act on wherever it points), or None."""
    for directory in (host_dir, host_dir / "job", host_dir / "logs"):
        if os.path.islink(directory):
            return (f"refused to store the job's output and logs: the job replaced "
                    f"{directory} by a symlink to {os.readlink(directory)}; nothing there "
                    "was stored or changed")
    return None


def salvage_logs(store: CollectionStore, work_root: Path, job_uuid: str) -> str | None:
    """Store what a dead worker left in its log dir, then remove its host dir."""
    host_dir = work_root / job_uuid
    log_dir = host_dir / "logs"
    pdh = None
    if log_dir.is_dir() and _replaced_dir(host_dir) is None:
        pdh = store.ingest_dir(log_dir, move=True, confine=log_dir)
    shutil.rmtree(host_dir, ignore_errors=True)
    return pdh
