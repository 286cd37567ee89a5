"""The cluster core: records, store, dispatchers and container engine, in this process.

Everything that serves a cluster goes through one ``ClusterCore``: the embedded client
(core.embedded) is a thin ClusterClient over it, and ``cwl-crunch server`` serves the
same core through the same methods. Nothing outside ``core/`` touches its records
database or its store (tests/test_layers.py keeps it so).

Several processes may open the same cluster home at once; the records database is the
only thing they share, and every decision that must not be taken twice (claiming a job,
reusing or joining a twin) is taken inside one of its write transactions.
"""

from __future__ import annotations

import atexit
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from cwl_crunch.config import Config
from cwl_crunch.containers import Engine, Images, find_engine
from cwl_crunch.containers.engine import HOW_TO_GET_ONE
from cwl_crunch.core.image_offers import ImageOffers
from cwl_crunch.core.residency import ResidencyRecords
from cwl_crunch.dispatch import dispatcher_class
from cwl_crunch.dispatch.base import ClusterParts, Dispatcher
from cwl_crunch.dispatch.child import ChildProcessDispatcher
from cwl_crunch.dispatch.split import SplitDispatcher
from cwl_crunch.errors import ContainerError, StoreError, SubmitError, TokenError
from cwl_crunch.model import (
    Claim,
    CollectionEntry,
    CollectionMount,
    EndReason,
    JobEvent,
    JobFilter,
    JobOutcome,
    JobRecord,
    JobSpec,
    JobState,
    NodeSize,
    WorkerInfo,
)
from cwl_crunch.model.jobs import JOB_UUID, cluster_of
from cwl_crunch.model.routing import HOST, Routing
from cwl_crunch.model.validation import check_spec
from cwl_crunch.records import access, jobs, residency
from cwl_crunch.records.database import Database
from cwl_crunch.records.reuse_key import reuse_key
from cwl_crunch.records.tokens import create_token, is_revoked, resolve_token
from cwl_crunch.store import CollectionStore, Manifest
from cwl_crunch.worker.isolation import Isolation, check_isolation
from cwl_crunch.worker.job_worker import JobWorker
from cwl_crunch.worker.processes import terminate_group, this_worker


class JobApi(Protocol):
    """The HTTP API of this cluster, served from this process to the jobs it runs (made
    by server.job_api: the core cannot import the server's)."""

    @property
    def url(self) -> str: ...

    def close(self) -> None: ...


JobApiFactory = Callable[["ClusterCore"], JobApi]


class ClusterCore(ImageOffers, ResidencyRecords):
    def __init__(self, config: Config, *, job_api: str | JobApiFactory | None = None,
                 dispatch_in_child: bool = False, serve_url: str | None = None,
                 isolation_required: bool = False) -> None:
        """``job_api``: how the jobs this process runs reach this cluster (their
        environment has nothing else: see worker.job_environment): the URL of the server
        whose core this is, or a factory of an API served from here (called when the
        first job starts); None: they cannot. ``dispatch_in_child``: run the jobs from a
        child process (a server does: see dispatch.child). ``serve_url``: this is the
        core of the server at that URL, which runs the config's dispatcher for
        whole-core jobs when that is not ``local`` (see dispatch.split).
        ``isolation_required`` (and ``serve_url``): refuse to run jobs unisolated unless
        the config says ``isolation = "none"`` (ConfigError here if they cannot be)."""
        isolation = Isolation.of(config, required=isolation_required or serve_url is not None)
        if isolation.required:
            check_isolation(config)
        self.config = config
        self.cluster_id = config.cluster_id
        self.database = Database(config.database)
        self.store = CollectionStore(config.store)
        self.store.on_damage = self._record_damage
        self._changed = threading.Condition()
        self._impure: set[str] = set()  # jobs marked impure by this process
        engine_url = find_engine(config.container_engine)
        self.engine = Engine(engine_url) if engine_url else None
        self.images = Images(self.engine) if self.engine else None
        self._job_api = job_api
        self._serving: JobApi | None = None
        self._serving_lock = threading.Lock()
        self.dispatcher = self._dispatcher(isolation, dispatch_in_child, serve_url)
        self._closed = False
        self.dispatcher.reap_orphans()
        atexit.register(self.close)

    def _dispatcher(self, isolation: Isolation, in_child: bool,
                    serve_url: str | None) -> Dispatcher:
        """The dispatchers that route.Routing sends this cluster's jobs to, built by
        name from the registry: this host's (in a child process for a server: see
        dispatch.child) and, for a server, the config's dispatcher for whole-core jobs."""
        routing = Routing(self.config.dispatcher)
        parts = ClusterParts(self.config, self.database, self.store, self.notify_changed)
        host: Dispatcher = dispatcher_class(HOST).create(
            parts, worker=self.job_worker(isolation, recycle_dirs=True), api_url=None)
        if in_child:
            # A factory's API would be the child's own (cli.dispatch serves it there).
            job_api = self._job_api
            host = ChildProcessDispatcher(host, cluster_environment(self.config),
                                          job_api if isinstance(job_api, str) else None)
        if serve_url is None or routing.dispatcher == HOST:
            return host
        whole = dispatcher_class(routing.dispatcher).create(parts, worker=None,
                                                            api_url=serve_url)
        return SplitDispatcher(host, whole, routing)

    @property
    def database_url(self) -> str:
        """The records database's URL, password hidden (for messages)."""
        return self.database.engine.url.render_as_string(hide_password=True)

    def job_worker(self, isolation: Isolation, *, recycle_dirs: bool = False) -> JobWorker:
        """A worker for this cluster's jobs in this process. It reaches the cluster as
        any worker does, through a ClusterClient: here the one over this core."""
        from cwl_crunch.core.embedded import EmbeddedClient  # a module that imports this

        return JobWorker(EmbeddedClient.over(self), self.store, self.config.work,
                         self.job_api_url, recycle_dirs=recycle_dirs, engine=self.engine,
                         isolation=isolation)

    def job_api_url(self) -> str | None:
        """Where the jobs this process runs reach this cluster's API. Asked by the worker
        at each job's start: a factory's API starts at the first, so that a process
        that runs no job (a CLI command, a program only reading) binds no port."""
        if not callable(self._job_api):
            return self._job_api
        with self._serving_lock:
            if self._serving is None:
                self._serving = self._job_api(self)
            return self._serving.url

    def token_job(self, token: str) -> str | None:
        """The job whose token ``token`` is (None for a person's); TokenError if none."""
        if not token:
            return None
        with self.database.reading() as connection:
            job_uuid: str | None = resolve_token(connection, token).job_uuid
            return job_uuid

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def create_token(self, *, peer_id: str | None = None) -> str:
        """A token for a person (no parent job), or for the peer cluster ``peer_id``."""
        if peer_id is not None and not re.fullmatch(r"[a-z0-9]{5}", peer_id):
            raise TokenError(f"peer {peer_id!r}: a cluster id is 5 lowercase letters or "
                             "digits")
        if peer_id == self.cluster_id:
            raise TokenError(f"{peer_id} is this cluster's own id, not a peer's")
        with self.database.writing() as connection:
            return create_token(connection, self.cluster_id, peer_id=peer_id)

    # Jobs -------------------------------------------------------------------------
    def submit(self, spec: JobSpec, *, parent_uuid: str | None = None,
               peer_id: str | None = None, remote_owner: str | None = None,
               hold: str | None = None) -> JobRecord:
        """Create a job below ``parent_uuid`` (None: a person's), or reuse or join
        identical work. ``peer_id``/``remote_owner``: submitted by that peer cluster's
        token for that person of it (the server derives the peer from the token).
        ``hold``: why a new Queued job waits (its mounts are still being pulled here):
        no dispatcher takes it until ``release_held``."""
        check_spec(spec)
        self.dispatcher.check_fits(spec)
        self.check_outward_mounts(spec, parent_uuid)
        if hold is None:
            self._check_mounts(spec)
        digest = self._image_digest(spec.image) if spec.image is not None else None
        key = reuse_key(spec, digest)
        if spec.reuse:
            self._verify_reusable(key)
        with self.database.writing() as connection:
            record = jobs.to_record(jobs.insert_job(
                connection, self.cluster_id, spec, parent_uuid=parent_uuid,
                key=key, output_problem=self.store.damage_of, image_digest=digest,
                peer_id=peer_id, remote_owner=remote_owner, queue_reason=hold,
            ))
        self.notify_changed()
        if not record.finished:
            self.dispatcher.start()
            self.dispatcher.wake()
        return record

    def release_held(self, uuid: str, *, failure: str | None = None) -> None:
        """A held job may run now; or, with ``failure``, it fails with that reason
        (what it waited for will not come)."""
        with self.database.writing() as connection:
            if failure is None:
                jobs.set_queue_reason(connection, uuid, None)
            else:
                job = jobs.get_job(connection, uuid)
                if job.state == JobState.QUEUED:
                    jobs.finish(connection, job, JobOutcome(
                        JobState.FAILED, None, None, None, failure, EndReason.ERROR))
        self.notify_changed()
        self.dispatcher.wake()

    def held_jobs(self) -> list[JobRecord]:
        with self.database.reading() as connection:
            return [jobs.to_record(row) for row in jobs.held_jobs(connection)]

    def parent_for(self, caller_job: str | None, parent_uuid: str | None) -> str | None:
        """The parent of a job that ``caller_job``'s token (None: a person's) submits,
        asking for ``parent_uuid``: a job's token makes only its own children, so only a
        person may name a parent, and only one of another cluster (a local job becomes a
        parent by submitting with its own token). The record of a foreign parent is not
        here: nothing checks that it exists (its cluster's records say)."""
        if parent_uuid is None:
            return caller_job
        if caller_job is not None:
            raise SubmitError(f"parent {parent_uuid}: a job's token submits its own "
                              f"children (job {caller_job}), it cannot name a parent")
        if not JOB_UUID.match(parent_uuid):
            raise SubmitError(f"parent {parent_uuid!r} is not a job UUID "
                              "(<cluster id>-job-<15 letters or digits>)")
        if cluster_of(parent_uuid) == self.cluster_id:
            raise SubmitError(f"parent {parent_uuid} is a job of this cluster: submit with "
                              "that job's own token to make it the parent")
        return parent_uuid

    def mark_impure(self, job_uuid: str, call: str) -> None:
        """Job ``job_uuid``'s token made ``call``, which is not pure work: the job is
        never reused or joined from now on (records.jobs.mark_impure). Once per job
        and process: a mark is never taken back."""
        if job_uuid in self._impure:
            return
        with self.database.writing() as connection:
            jobs.mark_impure(connection, job_uuid, call)
        self._impure.add(job_uuid)

    def _verify_reusable(self, key: str) -> None:
        """Hash the outputs reuse would hand on, up to the first intact one, before the
        write transaction: the check inside it then finds them known good (a stat), and
        the write lock is not held while a large output is read (1.5 s per GiB cold,
        measured on this VM; 6 ms per GiB once known good)."""
        with self.database.reading() as connection:
            candidates = jobs.reuse_candidates(connection, key)
        for pdh in candidates:
            if self.store.damage_of(pdh) is None:
                return

    def _record_damage(self, pdh: str, error: StoreError) -> str:
        """A reader found ``pdh`` damaged: the jobs that made it are not reused again
        (the step runs anew and its output repairs the store). Returns what to do."""
        with self.database.writing() as connection:
            jobs.mark_output_damaged(connection, pdh, str(error))
            makers = jobs.jobs_using(connection, [pdh]).get(pdh, [])
        if makers:
            return (f"job {makers[0]} made it and will not be reused: run the step again "
                    "to repair it (`cwl-crunch fsck` checks the whole store)")
        return ("put the same files again to repair it, or run `cwl-crunch fsck --repair` "
                "to check and repair the whole store")

    def _image_digest(self, image: str) -> str:
        """Pulled here if missing: once per cluster, not once per job."""
        if self.images is None:
            raise SubmitError(f"job image {image!r}: this cluster has no container engine: "
                              f"{HOW_TO_GET_ONE}")
        try:
            return self.images.digest(image)
        except ContainerError as error:
            raise SubmitError(str(error)) from None

    def _check_mounts(self, spec: JobSpec) -> None:
        for target, mount in spec.mounts.items():
            if isinstance(mount, CollectionMount):
                try:
                    self.store.entry(mount.pdh, mount.path)
                except StoreError as error:
                    raise SubmitError(f"mount {target!r}: {error}") from None

    def start_own_job(self, spec: JobSpec, worker: WorkerInfo, *,
                      parent_uuid: str | None = None) -> Claim:
        """Record work ``worker`` does itself as a job below ``parent_uuid``, Running
        at once (see ClusterClient.start_own_job)."""
        spec = dataclasses.replace(spec, reuse=False)
        check_spec(spec)
        with self.database.writing() as connection:
            row = jobs.insert_job(connection, self.cluster_id, spec,
                                  parent_uuid=parent_uuid, key=reuse_key(spec),
                                  output_problem=self.store.damage_of)
            jobs.claim(connection, row["uuid"], JobState.QUEUED, worker, self_run=True)
            token = create_token(connection, self.cluster_id, row["uuid"])
            claim = Claim(jobs.to_record(jobs.get_job(connection, row["uuid"])), token)
        self.notify_changed()
        return claim

    def job_worker_of(self, uuid: str) -> WorkerInfo | None:
        """Where job ``uuid``'s local worker runs, as its record says (None: not run
        by a local worker, such as a SLURM job)."""
        with self.database.reading() as connection:
            job = jobs.get_job(connection, uuid)
        if job.worker_host is None or job.worker_pid is None:
            return None
        return WorkerInfo(job.worker_host, job.worker_pid, job.worker_pid_start or 0)

    def get_job(self, uuid: str) -> JobRecord:
        with self.database.reading() as connection:
            return jobs.to_record(jobs.get_job(connection, uuid))

    def get_jobs(self, uuids: Sequence[str]) -> list[JobRecord]:
        with self.database.reading() as connection:
            return [jobs.to_record(row) for row in jobs.get_jobs(connection, uuids)]

    def list_jobs(self, job_filter: JobFilter) -> list[JobRecord]:
        with self.database.reading() as connection:
            rows = jobs.list_jobs(
                connection, parent_uuid=job_filter.parent_uuid,
                top_level=job_filter.top_level, only_states=job_filter.states,
                limit=job_filter.limit, after=job_filter.after)
            return [jobs.to_record(row) for row in rows]

    def largest_node(self) -> NodeSize:
        return self.dispatcher.largest_node()

    def cancel(self, uuid: str) -> JobRecord:
        to_kill = []
        with self.database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            for target in [job, *jobs.descendants(connection, uuid)]:
                if jobs.request_cancel(connection, target) and target.command_pgid:
                    to_kill.append((target.command_pgid, target.command_pgid_start,
                                    target.worker_host))
        self.notify_changed()
        host = this_worker().host
        for pgid, ticks, worker_host in to_kill:
            if worker_host == host:
                terminate_group(pgid, ticks)
        return self.get_job(uuid)

    def events(self, after_id: int, timeout: float) -> list[JobEvent]:
        deadline = time.monotonic() + timeout
        while True:
            with self.database.reading() as connection:
                found = jobs.events_after(connection, after_id)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            # Woken at once by changes made in this process; other processes' changes
            # are seen at the next poll.
            with self._changed:
                self._changed.wait(min(self.config.poll_interval, remaining))

    def comparable_event_id(self, after: int) -> int:
        """``after`` as the events table can compare it: PostgreSQL refuses a number
        wider than the id column (a 500), and no id is larger than that column holds."""
        return self.database.comparable_event_id(after)

    # Who may reach what (the server caches the answers: server/access.py) ---------------
    def resolve_token(self, token: str) -> tuple[str, str | None, str | None]:
        """The token's UUID, its job's (None: a person's or a peer's) and its peer
        cluster's (None: not a peer token); TokenError if it is unknown, revoked or
        malformed."""
        with self.database.reading() as connection:
            record = resolve_token(connection, token)
            return str(record.uuid), record.job_uuid, record.peer_id

    def job_within(self, uuid: str, ancestor: str) -> bool:
        """Whether ``ancestor`` is job ``uuid`` or above it; JobNotFound if no job."""
        with self.database.reading() as connection:
            return access.within(connection, uuid, ancestor)

    def peer_reaches_job(self, peer_id: str, uuid: str) -> bool:
        """Whether peer ``peer_id``'s token may reach job ``uuid``: it is, or is below,
        a job that peer submitted. JobNotFound if no job."""
        with self.database.reading() as connection:
            return access.peer_root(connection, uuid) == peer_id

    def peer_may_read(self, peer_id: str, pdh: str) -> bool:
        with self.database.reading() as connection:
            return access.peer_may_read(connection, peer_id, pdh)

    def note_sent(self, peer_id: str, pdh: str) -> None:
        """Collection ``pdh`` is handed to peer ``peer_id`` as a reference: that peer's
        token may read it, to pull the blocks it lacks."""
        with self.database.writing() as connection:
            access.note_sent(connection, peer_id, pdh)

    def job_may_read(self, job_uuid: str, pdh: str) -> bool:
        with self.database.reading() as connection:
            return access.may_read(connection, job_uuid, pdh)

    def note_upload(self, job_uuid: str, pdh: str) -> None:
        with self.database.writing() as connection:
            access.note_upload(connection, job_uuid, pdh)
            residency.settle_upload(connection, job_uuid, pdh, cluster_id=self.cluster_id,
                                    default_resident=self.keeps_everything)

    def note_block_upload(self, token_uuid: str, locator: str) -> None:
        with self.database.writing() as connection:
            access.note_block_upload(connection, token_uuid, locator)

    def uploaded_blocks(self, token_uuid: str, locators: Sequence[str]) -> set[str]:
        with self.database.reading() as connection:
            return access.uploaded_blocks(connection, token_uuid, locators)

    def token_revoked(self, token_uuid: str) -> bool:
        with self.database.reading() as connection:
            return is_revoked(connection, token_uuid)

    def last_event_id(self) -> int:
        with self.database.reading() as connection:
            return jobs.last_event_id(connection)

    def start_dispatching(self) -> None:
        """Start the queued jobs (idempotent): at a server's start, and before waiting."""
        self.dispatcher.start()

    def wake_dispatcher(self) -> None:
        """Jobs were queued or resources freed elsewhere: look again soon."""
        self.dispatcher.wake()

    def jobs_ended_here(self) -> int:
        """Jobs this process's dispatcher ran to their end (for progress lines)."""
        return self.dispatcher.jobs_ended

    def job_counts(self) -> tuple[int, int]:
        """Queued jobs (any host) and jobs running on this host."""
        with self.database.reading() as connection:
            return (jobs.count_queued(connection),
                    len(jobs.running_on_host(connection, this_worker().host)))

    # Collections --------------------------------------------------------------------
    def put_paths(self, paths: Sequence[Path]) -> str:
        return self.store.put_paths(paths)

    def list_collection(self, pdh: str, path: str = "") -> list[CollectionEntry]:
        return self.store.list(pdh, path)

    def read_file(self, pdh: str, path: str) -> Iterator[bytes]:
        return self.store.open_file(pdh, path)

    def get_collection(self, pdh: str, path: str, dest: Path) -> None:
        self.store.export(pdh, path, dest)

    def has_collection(self, pdh: str) -> bool:
        return self.store.has_collection(pdh)

    def entry(self, pdh: str, path: str = "") -> CollectionEntry:
        """The file or directory at ``path``; CollectionNotFound, PathNotFound."""
        return self.store.entry(pdh, path)

    def manifest(self, pdh: str) -> Manifest:
        return self.store.manifest(pdh)

    def manifest_text(self, pdh: str) -> bytes:
        return self.store.manifest_text(pdh)

    def put_manifest(self, text: bytes) -> str:
        """Store a manifest whose blocks are all here; returns its PDH."""
        pdh: str = self.store.put_manifest(text)
        return pdh

    @property
    def block_size(self) -> int:
        """The largest block this cluster stores."""
        return self.store.block_size

    def missing_blocks(self, locators: Sequence[str]) -> list[str]:
        """Those of ``locators`` whose blocks this cluster does not hold."""
        return list(self.store.missing_blocks(locators))

    def put_block(self, data: bytes) -> str:
        """Store one block; returns its (unsigned) locator."""
        locator: str = self.store.put_block(data)
        return locator

    def read_block(self, locator: str, pdh: str) -> bytes:
        """A block of collection ``pdh``, verified against its hash."""
        block: bytes = self.store.read_block(locator, pdh)
        return block

    # Worker side ----------------------------------------------------------------------
    def claim_job(self, uuid: str, worker: WorkerInfo) -> Claim | None:
        with self.database.writing() as connection:
            job = jobs.get_job(connection, uuid)
            if job.state != JobState.QUEUED or job.reused_job_uuid is not None:
                return None
            jobs.claim(connection, uuid, job.state, worker)
            token = create_token(connection, self.cluster_id, uuid)
            claim = Claim(jobs.to_record(jobs.get_job(connection, uuid)), token)
        self.notify_changed()
        return claim

    def set_job_process(self, uuid: str, pgid: int, pgid_start: int) -> bool:
        with self.database.writing() as connection:
            return jobs.set_process(connection, uuid, pgid, pgid_start)

    def finish_job(self, uuid: str, outcome: JobOutcome) -> JobRecord:
        with self.database.writing() as connection:
            ended = residency.end_job(connection, jobs.get_job(connection, uuid), outcome,
                                      self.config, shares_blocks=self.shares_blocks)
            record = jobs.to_record(ended)
        self.notify_changed()
        self.dispatcher.wake()
        return record

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self.dispatcher.stop()  # waits for the running jobs, which may use the API
        with self._serving_lock:
            serving, self._serving, self._job_api = self._serving, None, None
        if serving is not None:
            serving.close()
        if self.engine is not None:
            self.engine.close()
        self.database.close()


CLUSTER_KEYS = ("home", "cluster_id", "database_url", "store_dir", "work_dir",
                "poll_interval", "container_engine", "max_cores", "max_ram", "dispatcher",
                "isolation", "residency", "config")
"""What a server's dispatcher child gets of the config: the cluster's location, and the
same config file (to hide it from the jobs), isolation choice and residency default
(jobs end there) as the server's."""


def cluster_environment(config: Config) -> dict[str, str]:
    """CWL_CRUNCH_* variables that make a process open this same cluster embedded: a
    server's dispatcher child. Never a job's: a job's programs would read the records
    (token table included) and write the store (see worker.job_environment)."""
    return config.environment(*CLUSTER_KEYS)
