"""The local dispatcher: packs queued jobs onto this machine's cores and RAM.

Every process that uses an embedded cluster runs one of these in a thread. They share
nothing but the records database: what is running on this host, and so what is free,
is read from the records inside the same write transaction that claims the next jobs,
so two processes can never both take the last free core or run one job twice.

Workers run as threads of this process (a fresh interpreter per job would cost ~100 ms);
each job's command runs in its own process group.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable

from cwl_crunch.client.base import Claim, JobOutcome, JobSpec, JobState
from cwl_crunch.config import Config
from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.dispatch.packing import Candidate, Capacity, choose_jobs, fits_machine
from cwl_crunch.dispatch.processes import is_alive, kill_group, this_worker
from cwl_crunch.errors import CrunchError, SubmitError
from cwl_crunch.records import jobs, states
from cwl_crunch.records.database import Database
from cwl_crunch.records.tokens import create_token

# How often (seconds) to look for jobs whose worker process died.
REAP_INTERVAL = 1.0
# How many queued jobs one claiming transaction looks at.
QUEUE_WINDOW = 256
# Below this many free cores, do not even look at the queue.
MIN_CORES = 0.001


def machine_capacity(config: Config) -> Capacity:
    cores = config.max_cores or float(os.cpu_count() or 1)
    total_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    ram = config.max_ram or int(total_ram * 0.9)
    return Capacity(cores=cores, ram=ram)


class LocalDispatcher(Dispatcher):
    name = "local"

    def __init__(
        self,
        database: Database,
        config: Config,
        run_claim: Callable[[Claim], object],
        on_change: Callable[[], None],
        salvage_logs: Callable[[str], str | None],
    ) -> None:
        self._database = database
        self._config = config
        self._run_claim = run_claim
        self._on_change = on_change
        self._salvage_logs = salvage_logs
        self.capacity = machine_capacity(config)
        self._worker = this_worker()
        self._wakeup = threading.Condition()
        self._woken = False
        self._stopping = threading.Event()
        self._loop_thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def check_fits(self, spec: JobSpec) -> None:
        if spec.gpus:
            raise SubmitError(f"job needs {spec.gpus} GPU(s); the local dispatcher has none")
        if not fits_machine(spec.cores, spec.ram, self.capacity):
            raise SubmitError(
                f"job needs {spec.cores:g} cores and {spec.ram / 2**30:.2f} GiB RAM; this "
                f"machine offers at most {self.capacity.cores:g} cores and "
                f"{self.capacity.ram / 2**30:.2f} GiB (max_cores / max_ram in the config)"
            )

    def start(self) -> None:
        with self._lock:
            if self._loop_thread is not None or self._stopping.is_set():
                return
            self._loop_thread = threading.Thread(
                target=self._loop, name="cwl-crunch-dispatcher", daemon=False
            )
            self._loop_thread.start()

    def wake(self) -> None:
        with self._wakeup:
            self._woken = True
            self._wakeup.notify_all()

    def stop(self) -> None:
        self._stopping.set()
        self.wake()
        loop = self._loop_thread
        if loop is not None and loop is not threading.current_thread():
            loop.join()
        for worker in list(self._workers):
            worker.join()

    # The loop -------------------------------------------------------------------------
    def _loop(self) -> None:
        main = threading.main_thread()
        next_reap = 0.0
        woken = True
        # Stop claiming once the program's main thread has ended: the interpreter is
        # shutting down, and only the jobs already running are waited for.
        while not self._stopping.is_set() and main.is_alive():
            if time.monotonic() >= next_reap:
                self.reap_orphans()
                next_reap = time.monotonic() + REAP_INTERVAL
            claims = self._claim_what_fits(woken)
            for claim in claims:
                self._start_worker(claim)
            if claims:
                self._on_change()
            if len(claims) == QUEUE_WINDOW:
                continue  # the window was the limit, not the free resources
            with self._wakeup:
                if not self._woken:
                    self._wakeup.wait(self._config.poll_interval)
                woken, self._woken = self._woken, False

    def _claim_what_fits(self, woken: bool) -> list[Claim]:
        if not woken:
            # A timed poll: look for other processes' jobs without taking the write lock.
            with self._database.reading() as connection:
                if not jobs.queued_candidates(connection, 1):
                    return []
        with self._database.writing() as connection:
            used_cores, used_ram = jobs.usage_on_host(connection, self._worker.host)
            free = Capacity(self.capacity.cores - used_cores, self.capacity.ram - used_ram)
            if not fits_machine(MIN_CORES, 1, free):
                return []
            queued = jobs.queued_candidates(connection, QUEUE_WINDOW)
            chosen = choose_jobs((Candidate(*row) for row in queued), free)
            tokens = []
            for uuid in chosen:
                jobs.claim(connection, uuid, states.QUEUED, self._worker)
                tokens.append(create_token(connection, self._config.cluster_id, uuid))
            rows = jobs.get_jobs(connection, chosen)
            return [Claim(jobs.to_record(row), token)
                    for row, token in zip(rows, tokens, strict=True)]

    def _start_worker(self, claim: Claim) -> None:
        thread = threading.Thread(
            target=self._work, args=(claim,), name=f"worker-{claim.job.uuid}", daemon=False
        )
        self._workers.add(thread)
        thread.start()

    def _work(self, claim: Claim) -> None:
        try:
            self._run_claim(claim)
        finally:
            self._workers.discard(threading.current_thread())
            self.wake()

    # Dead workers ---------------------------------------------------------------------
    def reap_orphans(self) -> int:
        """Fail the jobs on this host whose worker process is gone, killing what they left."""
        with self._database.reading() as connection:
            running = [
                (job.uuid, job.worker_pid, job.worker_pid_start)
                for job in jobs.running_on_host(connection, self._worker.host)
                if job.worker_pid is not None and job.worker_pid != self._worker.pid
            ]
        dead = [uuid for uuid, pid, ticks in running if pid and not is_alive(pid, ticks)]
        for uuid in dead:
            self._fail_orphan(uuid)
        if dead:
            self._on_change()
        return len(dead)

    def _fail_orphan(self, uuid: str) -> None:
        with self._database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            pid = job.worker_pid
            if job.state != states.RUNNING or pid is None or is_alive(pid, job.worker_pid_start):
                return  # someone else reaped it, or it was a false alarm
            if job.command_pgid:
                kill_group(job.command_pgid, job.command_pgid_start)
            state: JobState = states.CANCELLED if job.cancel_requested else states.FAILED
            reason = f"worker process {pid} on {job.worker_host} died while the job ran"
            log_pdh: str | None = None
            with contextlib.suppress(CrunchError, OSError):  # logs are a courtesy
                log_pdh = self._salvage_logs(uuid)
            jobs.finish(connection, job, JobOutcome(state, None, None, log_pdh, reason))
