"""The SLURM dispatcher: every job of one core or more becomes one SLURM batch job.

``cwl-crunch server --dispatcher slurm`` runs it in a thread of the server, beside the
local dispatcher (in its child process) which keeps the jobs under one core: workflow
runners take 0.25 core and spend their life waiting for their steps, and SLURM would
give each a whole CPU of the cluster (see ``split.py``).

One loop thread claims queued whole-core jobs (Running, backend "slurm") and
hands them to a few submitting threads, each running ``sbatch`` for one job: the batch
script is ``cwl-crunch worker UUID`` with the job's token, which stages from the shared
store directory, runs the command and reports to the server like any worker. The loop
also reads ``squeue`` every TRACK_INTERVAL seconds while SLURM has jobs of ours, to
catch what no worker can report (``slurm_tracking.py``). It keeps no state of its own
that matters: a restarted dispatcher re-adopts everything from the records and SLURM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cwl_crunch.config import ENV_PREFIX, Config
from cwl_crunch.dispatch import slurm_commands as commands
from cwl_crunch.dispatch.base import ClusterParts, Dispatcher
from cwl_crunch.dispatch.slurm_commands import slurm_output_path
from cwl_crunch.dispatch.slurm_tracking import (
    BACKEND,
    Adopt,
    Cancel,
    End,
    Submit,
    Tracked,
    decide,
)
from cwl_crunch.errors import ConfigError, CrunchError, DispatchError, SubmitError
from cwl_crunch.model import Claim, EndReason, JobOutcome, JobSpec, JobState, NodeSize
from cwl_crunch.records import jobs, residency
from cwl_crunch.records.tokens import create_token
from cwl_crunch.worker.job_worker import JobWorker, salvage_logs
from cwl_crunch.worker.processes import cli_command

logger = logging.getLogger(__name__)

TRACK_INTERVAL = 2.0
"""Seconds between squeue reads while SLURM runs jobs of ours (workers report their
jobs' ends themselves; squeue is for the ends no worker could report)."""
QUEUE_WINDOW = 64
SUBMITTING_THREADS = 4
COMMAND_TIMEOUT = 60.0
"""Seconds to wait for sbatch, squeue, scontrol or scancel before giving up this time."""
TIME_LIMIT_MARGIN = 600.0
"""Added to a job's own time limit (which its worker enforces) for SLURM's: staging and
storing outputs take time too, and SLURM's limit is only the backstop."""
MAX_STARTS = 3
"""A job whose node failed (or that was preempted) is requeued until it started this
many times."""
PARTITION_PROPERTY = "partition"
"""A job property naming the SLURM partition(s) to use (the CWL runner sets it from an
``arv:PartitionRequirement`` hint); else the config's ``slurm_partition``."""
NODES_TTL = 60.0
"""Seconds the largest node sinfo reported is kept (each CWL run asks once; a cluster's
nodes change far more rarely)."""


def worker_environment(config: Config, api_url: str, token: str) -> dict[str, str]:
    """CWL_CRUNCH_* variables of the worker in the allocation: the server, the job's own
    token, and the shared directories. The worker's, not its job's: the job's command
    gets only the URL and the token (worker.job_environment)."""
    # The server's isolation choice holds on the node too.
    environment = config.replace(api_url=api_url, api_token=token).environment(
        "home", "cluster_id", "api_url", "api_token", "store_dir", "work_dir",
        "container_engine", "isolation")
    return environment


class SlurmDispatcher(Dispatcher):
    name = "slurm"

    def __init__(self, cluster: ClusterParts, api_url: str) -> None:
        self._cluster = cluster
        self._config = cluster.config
        self._api_url = api_url
        self._extra = shlex.split(self._config.slurm_options)
        self._environment = {name: value for name, value in os.environ.items()
                             if not name.startswith(ENV_PREFIX)}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._loop_thread: threading.Thread | None = None
        self._submitting: set[str] = set()  # claimed, sbatch not answered; under _lock
        self._cancelled: dict[str, float] = {}  # SLURM id -> when scancel last ran
        self._largest: tuple[float, NodeSize] | None = None  # when read, what; under _lock
        self._pool = ThreadPoolExecutor(SUBMITTING_THREADS, thread_name_prefix="sbatch")
        slurm_output_path(self._config.work, "x").parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, cluster: ClusterParts, *, worker: JobWorker | None,
               api_url: str | None) -> SlurmDispatcher:
        if api_url is None:  # its workers report to a server: there is none to report to
            raise ConfigError(f"the {cls.name} dispatcher runs the jobs of a "
                              "`cwl-crunch server` only")
        return cls(cluster, api_url)

    def check_fits(self, spec: JobSpec) -> None:
        # What SLURM can never run, sbatch refuses: the job then fails at once with
        # SLURM's own words (see _submit), which know the nodes better than we could.
        commands.sbatch_arguments(spec, job_uuid="check", command=["true"],
                                  output_path=Path("/dev/null"))

    def largest_node(self) -> NodeSize:
        """From ``sinfo``, kept NODES_TTL seconds."""
        with self._lock:
            if self._largest is not None and \
                    time.monotonic() - self._largest[0] < NODES_TTL:
                return self._largest[1]
        listed = self._run(commands.sinfo_arguments())
        if listed.returncode != 0:
            raise DispatchError(f"sinfo failed (exit {listed.returncode}): "
                                f"{listed.stderr.strip()}")
        largest = commands.parse_sinfo_nodes(listed.stdout)
        with self._lock:
            self._largest = (time.monotonic(), largest)
        return largest

    def start(self) -> None:
        with self._lock:
            if self._loop_thread is not None or self._stopping.is_set():
                return
            self._loop_thread = threading.Thread(target=self._loop, daemon=True,
                                                 name="cwl-crunch-slurm")
            self._loop_thread.start()

    def wake(self) -> None:
        self._wake.set()

    def reap_orphans(self) -> int:
        return 0  # the loop's tracking does it (it must read squeue first)

    def stop(self) -> None:
        """Stop submitting; SLURM keeps running what it has, for the next dispatcher."""
        self._stopping.set()
        self._wake.set()
        loop = self._loop_thread
        if loop is not None and loop is not threading.current_thread():
            loop.join()
        self._pool.shutdown(wait=True)

    # The loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        next_track = 0.0
        while not self._stopping.is_set():
            try:
                for claim in self._claim():
                    self._pool.submit(self._submit, claim)
                if time.monotonic() >= next_track:
                    self.track()
                    next_track = time.monotonic() + TRACK_INTERVAL
            except Exception:
                logger.exception("SLURM dispatcher: unexpected error; continuing")
            self._wake.wait(max(0.0, min(next_track - time.monotonic(),
                                         max(self._config.poll_interval, 0.5))))
            self._wake.clear()

    def _claim(self) -> list[Claim]:
        database = self._cluster.database
        with database.reading() as connection:
            if not jobs.queued_candidates(connection, 1, whole_cores=True):
                return []
        with database.writing() as connection:
            queued = jobs.queued_candidates(connection, QUEUE_WINDOW, whole_cores=True)
            claims = []
            for uuid, _cores, _ram in queued:
                jobs.claim(connection, uuid, JobState.QUEUED, None, backend=BACKEND)
                token = create_token(connection, self._config.cluster_id, uuid)
                claims.append(Claim(jobs.to_record(jobs.get_job(connection, uuid)), token))
        with self._lock:
            self._submitting.update(claim.job.uuid for claim in claims)
        return claims

    # Submitting -----------------------------------------------------------------------
    def _submit(self, claim: Claim) -> None:
        uuid = claim.job.uuid
        try:
            self._sbatch(claim)
        except Exception as error:  # the job must end, not stay Running
            logger.exception("SLURM dispatcher: cannot submit job %s", uuid)
            self._end(uuid, None, JobState.FAILED, f"cannot submit to SLURM: {error}",
                      EndReason.REFUSED)
        finally:
            with self._lock:
                self._submitting.discard(uuid)

    def _sbatch(self, claim: Claim) -> None:
        job = claim.job
        spec = job.spec
        if spec.time_limit is not None:
            spec = dataclasses.replace(spec, time_limit=spec.time_limit + TIME_LIMIT_MARGIN)
        try:
            arguments = commands.sbatch_arguments(
                spec, job_uuid=job.uuid, command=cli_command("worker", job.uuid),
                output_path=slurm_output_path(self._config.work, job.uuid),
                partition=self._partition(spec), extra=self._extra)
        except SubmitError as error:
            self._end(job.uuid, None, JobState.FAILED, str(error), EndReason.REFUSED)
            return
        environment = {**self._environment,
                       **worker_environment(self._config, self._api_url, claim.token)}
        done = self._run(arguments, environment)
        if done.returncode != 0:
            self._end(job.uuid, None, JobState.FAILED, commands.sbatch_refusal(done.stderr),
                      EndReason.REFUSED)
            return
        slurm_id = commands.parse_sbatch_output(done.stdout)
        with self._cluster.database.writing() as connection:
            recorded = jobs.set_backend_job_id(connection, job.uuid, BACKEND, slurm_id)
        if not recorded:  # ended meanwhile (a cancel, a lost race): nothing to run
            self._run(commands.scancel_arguments([slurm_id]))

    def _partition(self, spec: JobSpec) -> str | None:
        return spec.properties.get(PARTITION_PROPERTY) or self._config.slurm_partition or None

    def _run(self, arguments: Sequence[str], environment: Mapping[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(arguments, capture_output=True, text=True, check=False,
                                  timeout=COMMAND_TIMEOUT, env=environment,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DispatchError(f"{arguments[0]}: {error}") from None

    # Tracking -------------------------------------------------------------------------
    def track(self) -> None:
        """Compare the records with SLURM and act on the differences."""
        if not self._tracked():
            return
        listed = self._run(commands.squeue_arguments())
        if listed.returncode != 0:
            logger.warning("squeue failed (exit %d): %s", listed.returncode,
                           listed.stderr.strip())
            return
        seen: dict[str, commands.SlurmJob | None] = dict(commands.parse_squeue(listed.stdout))
        tracked = self._tracked()  # after squeue: see slurm_tracking's docstring
        for record in tracked:
            job = seen.get(record.slurm_id or "")
            if record.slurm_id and (job is None or commands.classify(job).disposition
                                    is not commands.Disposition.ACTIVE):
                seen[record.slurm_id] = self._look_up(record.slurm_id)
        for action in decide(tracked, seen):
            self._act(action)

    def _tracked(self) -> list[Tracked]:
        with self._cluster.database.reading() as connection:
            rows = jobs.running_on_backend(connection, BACKEND)
        with self._lock:
            submitting = set(self._submitting)
        return [Tracked(row.uuid, row.backend_job_id or None,
                        bool(row.cancel_requested))
                for row in rows if row.uuid not in submitting]

    def _look_up(self, slurm_id: str) -> commands.SlurmJob | None:
        """What scontrol says of the job (exit code and signal too); None if SLURM does
        not know it."""
        shown = self._run(commands.scontrol_arguments(slurm_id))
        if shown.returncode != 0:
            if "Invalid job id" in shown.stderr:
                return None
            raise DispatchError(f"scontrol show job {slurm_id}: {shown.stderr.strip()}")
        return commands.parse_scontrol_job(shown.stdout)

    def _act(self, action: Adopt | Submit | Cancel | End) -> None:
        if isinstance(action, Adopt):
            with self._cluster.database.writing() as connection:
                jobs.set_backend_job_id(connection, action.uuid, BACKEND, action.slurm_id)
        elif isinstance(action, Submit):
            self._resubmit(action.uuid)
        elif isinstance(action, Cancel):
            last = self._cancelled.get(action.slurm_id, 0.0)
            if time.monotonic() - last > 10 * TRACK_INTERVAL:
                self._cancelled[action.slurm_id] = time.monotonic()
                self._run(commands.scancel_arguments([action.slurm_id]))
        else:
            self._cancelled.pop(action.slurm_id, None)
            self._end(action.uuid, action.slurm_id, action.state,
                      self._with_worker_words(action.uuid, action.reason),
                      action.end_reason, action.retry)

    def _resubmit(self, uuid: str) -> None:
        """A claimed job that never reached SLURM (the dispatcher stopped in between)."""
        with self._cluster.database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            if job.state != JobState.RUNNING or job.backend != BACKEND or job.backend_job_id:
                return
            token = create_token(connection, self._config.cluster_id, uuid)
            claim = Claim(jobs.to_record(job), token)
        with self._lock:
            self._submitting.add(uuid)
        self._pool.submit(self._submit, claim)

    def _with_worker_words(self, uuid: str, reason: str) -> str:
        """The reason, and the last line the worker printed, which often says why."""
        path = slurm_output_path(self._config.work, uuid)
        with contextlib.suppress(OSError):
            lines = [line for line in path.read_text(errors="replace").splitlines()
                     if line.strip()]
            if lines:
                return f"{reason}; its worker said: {lines[-1].strip()[:500]}"
        return reason

    def _end(self, uuid: str, slurm_id: str | None, state: JobState, reason: str,
             end_reason: EndReason, retry: bool = False) -> None:
        """End (or requeue) a job of ours still Running as ``slurm_id`` left it."""
        with self._cluster.database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            if job.state != JobState.RUNNING or job.backend != BACKEND or (
                    slurm_id is not None and job.backend_job_id != slurm_id):
                return  # the worker reported, or another attempt runs now
            if retry and jobs.times_started(connection, uuid) < MAX_STARTS:
                logger.warning("job %s: %s; queued again", uuid, reason)
                jobs.requeue(connection, job)
                # The next run must not find what this one left in its job dir.
                shutil.rmtree(self._config.work / uuid, ignore_errors=True)
                return
            log_pdh = None
            with contextlib.suppress(CrunchError, OSError):  # logs are a courtesy
                log_pdh = salvage_logs(self._cluster.store, self._config.work, uuid)
            residency.end_job(connection, job, JobOutcome(
                state, None, None, log_pdh, reason, end_reason), self._config)
        slurm_output_path(self._config.work, uuid).unlink(missing_ok=True)
        self._cluster.notify_changed()
