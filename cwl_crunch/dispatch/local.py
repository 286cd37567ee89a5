"""The local dispatcher: packs queued jobs onto this machine's cores and RAM.

Every process that uses an embedded cluster runs one of these. They share nothing but
the records database: what is running on this host, and so what is free, is read from
the records inside the same write transaction that claims the next jobs, so two
processes can never both take the last free core or run one job twice.

One thread runs every job of this process as an event loop: claim what fits, start it
(a fresh interpreter per job would cost ~100 ms; a thread per job spends its time
fighting the others for the GIL), then wait on the processes' pidfds and a wake-up pipe.
Each command runs in its own process group. A job whose process ended is completed
(outputs and logs stored, record finished, job dir released) by one of a few completing
threads: done in the loop, that work kept it busy for 80% of a 500-step scatter, time in
which it could not start the next jobs. Starting them from threads too was tried and was
slower: on two cores the extra threads only fought over the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cwl_crunch.config import Config
from cwl_crunch.dispatch.base import ClusterParts, Dispatcher
from cwl_crunch.dispatch.packing import Candidate, Capacity, choose_jobs, fits_machine
from cwl_crunch.errors import ConfigError, CrunchError, SubmitError
from cwl_crunch.model import (
    Claim,
    ClusterClient,
    EndReason,
    JobOutcome,
    JobSpec,
    JobState,
    NodeSize,
)
from cwl_crunch.model.routing import HOST, Routing
from cwl_crunch.records import jobs, residency
from cwl_crunch.records.database import Database
from cwl_crunch.records.tokens import PREFIX as TOKEN_PREFIX
from cwl_crunch.records.tokens import create_token, job_token_uuids
from cwl_crunch.store import CollectionStore
from cwl_crunch.worker.in_container import remove_leftovers
from cwl_crunch.worker.job_environment import API_TOKEN
from cwl_crunch.worker.job_worker import JobRun, JobWorker, salvage_logs
from cwl_crunch.worker.process import ProcessResult, time_limit_result
from cwl_crunch.worker.processes import (
    KILL_GRACE,
    groups_with_environment,
    is_alive,
    kill_group,
    this_worker,
)

logger = logging.getLogger(__name__)

# How often (seconds) to look for jobs whose worker process died.
REAP_INTERVAL = 1.0
# How many queued jobs one claiming transaction looks at.
QUEUE_WINDOW = 64
# Below this many free cores, do not even look at the queue.
MIN_CORES = 0.001
# Threads completing ended jobs (see the module's docstring).
COMPLETING_THREADS = 2


def machine_capacity(config: Config) -> Capacity:
    cores = config.max_cores or float(os.cpu_count() or 1)
    total_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    ram = config.max_ram or int(total_ram * 0.9)
    return Capacity(cores=cores, ram=ram)


class LocalDispatcher(Dispatcher):
    name = "local"

    def __init__(
        self, database: Database, config: Config, client: ClusterClient,
        store: CollectionStore, worker: JobWorker,
    ) -> None:
        self._database = database
        self._config = config
        self._client = client
        self._store = store
        self._worker = worker
        self.capacity = machine_capacity(config)
        # With another dispatcher for jobs of whole cores, only the smaller ones run here.
        self._routing = Routing(config.dispatcher)
        self._whole_cores = self._routing.whole_cores(HOST)
        self._me = this_worker()
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._running: dict[int, JobRun] = {}
        self._completing = ThreadPoolExecutor(COMPLETING_THREADS,
                                              thread_name_prefix="cwl-crunch-completing")
        # Jobs handed to a completing thread, by UUID; guarded by _lock.
        self._ended: dict[str, JobRun] = {}
        self.jobs_ended = 0

    @classmethod
    def create(cls, cluster: ClusterParts, *, worker: JobWorker | None,
               api_url: str | None) -> LocalDispatcher:
        if worker is None:
            raise ConfigError("the local dispatcher runs jobs in this process: it needs "
                              "a worker")
        return cls(cluster.database, cluster.config, worker.client, cluster.store, worker)

    def check_fits(self, spec: JobSpec) -> None:
        if self._routing.route(spec) != HOST:
            raise SubmitError(f"a {spec.cores:g}-core job goes to the {self._config.dispatcher}"
                              " dispatcher, which only `cwl-crunch server` runs")
        if spec.gpus:
            raise SubmitError(f"job needs {spec.gpus} GPU(s); the local dispatcher has none")
        if not fits_machine(spec.cores, spec.ram, self.capacity):
            raise SubmitError(
                f"job needs {spec.cores:g} cores and {spec.ram / 2**30:.2f} GiB RAM; this "
                f"machine offers at most {self.capacity.cores:g} cores and "
                f"{self.capacity.ram / 2**30:.2f} GiB (max_cores / max_ram in the config)"
            )

    def largest_node(self) -> NodeSize:
        return NodeSize(cores=self.capacity.cores, ram=self.capacity.ram)

    def start(self) -> None:
        with self._lock:
            if self._loop_thread is not None or self._stopping.is_set():
                return
            # Not a daemon: jobs started here are completed before the interpreter exits.
            self._loop_thread = threading.Thread(
                target=self._loop, name="cwl-crunch-dispatcher", daemon=False)
            self._loop_thread.start()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full pipe: already woken
            os.write(self._wake_write, b"!")

    def stop(self) -> None:
        self._stopping.set()
        self.wake()
        loop = self._loop_thread
        if loop is not None and loop is not threading.current_thread():
            loop.join()
        self._completing.shutdown(wait=True)
        with contextlib.suppress(OSError):
            self._selector.close()
            os.close(self._wake_read)
            os.close(self._wake_write)

    # The loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        main = threading.main_thread()
        next_reap = 0.0
        woken = True
        while True:
            # Once the program's main thread has ended, claim nothing new and finish
            # what is running.
            accepting = not self._stopping.is_set() and main.is_alive()
            if not accepting and not self._running and not self._ended_count():
                return
            try:
                if time.monotonic() >= next_reap:
                    self.reap_orphans()
                    next_reap = time.monotonic() + REAP_INTERVAL
                if accepting:
                    for claim in self._claim_what_fits(woken):
                        self._launch(claim)
                woken = self._wait_for_events(self._select_timeout(next_reap))
                self._enforce_time_limits()
            except Exception:
                logger.exception("local dispatcher: unexpected error; continuing")
                time.sleep(self._config.poll_interval)

    def _select_timeout(self, next_reap: float) -> float:
        now = time.monotonic()
        moments = [next_reap, now + self._config.poll_interval]
        for job_run in self._running.values():
            moments.extend(m for m in (job_run.deadline, job_run.kill_at) if m is not None)
        return max(0.0, min(moments) - now)

    def _claim_what_fits(self, woken: bool) -> list[Claim]:
        if self.capacity.cores - self._cores_held() < MIN_CORES:
            # Full with its own jobs: no need to ask the records (a server wakes this
            # loop for every job submitted).
            return []
        if not woken:
            # A timed poll: look for other processes' jobs without taking the write lock.
            with self._database.reading() as connection:
                if not jobs.queued_candidates(connection, 1, whole_cores=self._whole_cores):
                    return []
        with self._database.writing() as connection:
            used_cores, used_ram = jobs.usage_on_host(connection, self._me.host)
            free = Capacity(self.capacity.cores - used_cores, self.capacity.ram - used_ram)
            if not fits_machine(MIN_CORES, 1, free):
                return []
            queued = jobs.queued_candidates(connection, QUEUE_WINDOW,
                                            whole_cores=self._whole_cores)
            chosen = choose_jobs((Candidate(*row) for row in queued), free)
            tokens = []
            for uuid in chosen:
                jobs.claim(connection, uuid, JobState.QUEUED, self._me)
                tokens.append(create_token(connection, self._config.cluster_id, uuid))
            rows = jobs.get_jobs(connection, chosen)
            return [Claim(jobs.to_record(row), token)
                    for row, token in zip(rows, tokens, strict=True)]

    def _cores_held(self) -> float:
        """Cores of the jobs this process started and has not finished (the loop's own
        view: a lower bound of what the records say is used here)."""
        with self._lock:
            ended = list(self._ended.values())
        return sum(run.claim.job.spec.cores for run in [*self._running.values(), *ended])

    def _ended_count(self) -> int:
        with self._lock:
            return len(self._ended)

    def _launch(self, claim: Claim) -> None:
        try:
            job_run = self._worker.start(claim)
        except OSError as error:  # the job's host dir or log could not even be made
            self._client.finish_job(claim.job.uuid, JobOutcome(
                JobState.FAILED, None, None, None, f"worker error: {error}", EndReason.ERROR))
            return
        if job_run.command is None:
            self._complete_later(job_run, None)
            return
        pidfd = os.pidfd_open(job_run.command.process.pid)
        self._selector.register(pidfd, selectors.EVENT_READ, job_run)
        self._running[pidfd] = job_run

    def _wait_for_events(self, timeout: float) -> bool:
        """Complete the jobs whose process ended; True if new work may fit now."""
        woken = False
        for key, _ in self._selector.select(timeout):
            if key.fileobj == self._wake_read:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self._wake_read, 4096):
                        pass
                woken = True
                continue
            pidfd = int(key.fd)
            self._selector.unregister(pidfd)
            os.close(pidfd)
            job_run = self._running.pop(pidfd)
            self._complete_later(job_run, self._result(job_run))
        return woken

    def _complete_later(self, job_run: JobRun, result: ProcessResult | None) -> None:
        with self._lock:
            self._ended[job_run.uuid] = job_run
        self._completing.submit(self._complete, job_run, result)

    def _complete(self, job_run: JobRun, result: ProcessResult | None) -> None:
        """In a completing thread; wakes the loop once the job's cores are free."""
        try:
            self._worker.complete(job_run, result)
        except Exception:
            logger.exception("local dispatcher: cannot complete job %s", job_run.uuid)
        finally:
            with self._lock:
                del self._ended[job_run.uuid]
                self.jobs_ended += 1
            self.wake()

    @staticmethod
    def _result(job_run: JobRun) -> ProcessResult:
        assert job_run.command is not None
        # The leader has exited but is not reaped yet, so its pid (the group id) cannot
        # have been reused: stop whatever it left in its group before collecting outputs.
        kill_group(job_run.command.process.pid, None, signal.SIGKILL)
        exit_code = job_run.command.process.wait()  # already ended: this only reaps it
        if job_run.kill_at is not None:
            return time_limit_result(job_run.command, job_run.claim.job.spec.time_limit)
        return ProcessResult(exit_code)

    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for job_run in self._running.values():
            command = job_run.command
            assert command is not None
            if job_run.kill_at is not None and now >= job_run.kill_at:
                kill_group(command.process.pid, None, signal.SIGKILL)
            elif job_run.kill_at is None and job_run.deadline is not None \
                    and now >= job_run.deadline:
                job_run.log.write("time limit reached: stopping the command")
                kill_group(command.process.pid, command.ticks, signal.SIGTERM)
                job_run.kill_at = now + KILL_GRACE

    # Dead workers ---------------------------------------------------------------------
    def reap_orphans(self) -> int:
        """Fail the jobs on this host whose worker process is gone, killing what they left."""
        with self._database.reading() as connection:
            running = [
                (job.uuid, job.worker_pid, job.worker_pid_start)
                for job in jobs.running_on_host(connection, self._me.host)
                if job.worker_pid is not None and job.worker_pid != self._me.pid
            ]
        dead = [uuid for uuid, pid, ticks in running if pid and not is_alive(pid, ticks)]
        for uuid in dead:
            self._fail_orphan(uuid)
        return len(dead)

    def _fail_orphan(self, uuid: str) -> None:
        with self._database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            pid = job.worker_pid
            if job.state != JobState.RUNNING or pid is None or is_alive(pid, job.worker_pid_start):
                return  # someone else reaped it, or it was a false alarm
            # Isolated, the group's leader is unshare: killing it kills the job's PID
            # namespace, so also what left the group (worker/isolation.py). Unisolated,
            # a process that left the group and dropped its token is not found here.
            if job.command_pgid:
                kill_group(job.command_pgid, job.command_pgid_start)
            else:
                # It died between starting the command and recording its group.
                for token_uuid in job_token_uuids(connection, uuid):
                    needle = f"{API_TOKEN}={TOKEN_PREFIX}/{token_uuid}/".encode()
                    for group in groups_with_environment(needle):
                        kill_group(group, None)
            state: JobState = JobState.CANCELLED if job.cancel_requested else JobState.FAILED
            reason = f"worker process {pid} on {job.worker_host} died while the job ran"
            log_pdh: str | None = None
            with contextlib.suppress(CrunchError, OSError):  # logs are a courtesy
                log_pdh = salvage_logs(self._store, self._config.work, uuid)
            residency.end_job(connection, job, JobOutcome(
                state, None, None, log_pdh, reason, EndReason.WORKER_DIED), self._config)
        if job.image_digest is not None:  # outside the transaction: engine calls are slow
            remove_leftovers(self._worker.engine, uuid, None)
