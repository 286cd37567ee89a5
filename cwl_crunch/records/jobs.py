"""Job queries and state changes. Every function works inside the caller's transaction.

Each state change goes through :func:`_set_state`, which checks the state machine and
appends an event, so the event log and the records cannot disagree. SQLAlchemy Core
(not the ORM): these run several times per job on the dispatcher's hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)

from cwl_crunch.errors import JobNotFound, SubmitError
from cwl_crunch.model import (
    FINAL_STATES,
    EndReason,
    JobEvent,
    JobOutcome,
    JobRecord,
    JobSpec,
    JobState,
    WorkerInfo,
    check_transition,
)
from cwl_crunch.model.codec import SPEC_FIELDS, spec_from_dict, spec_to_dict
from cwl_crunch.model.jobs import cluster_of
from cwl_crunch.model.routing import WHOLE_CORE
from cwl_crunch.records.ids import new_uuid
from cwl_crunch.records.models import Event, Job
from cwl_crunch.records.tokens import revoke_job_tokens

JOBS = cast(Table, Job.__table__)
EVENTS = cast(Table, Event.__table__)
_LIVE = (JobState.QUEUED, JobState.RUNNING)

JobRow = Row[Any]  # a row of JOBS (all columns)
OutputCheck = Callable[[str], str | None]
"""PDH -> what is wrong with that collection in the store, or None if stored intact."""

# Statements run several times per job are built once: building a statement costs
# SQLAlchemy about three times what executing a prebuilt one does.
_GET_JOB = select(JOBS).where(JOBS.c.uuid == bindparam("uuid"))
_INSERT_JOB = insert(JOBS)
# The SET clause comes from the parameters' keys; the key of the row is "_uuid".
_UPDATE_JOB = update(JOBS).where(JOBS.c.uuid == bindparam("_uuid"))
_ADD_EVENT = insert(EVENTS)
_FOLLOWERS = select(JOBS.c.uuid, JOBS.c.state).where(
    JOBS.c.reused_job_uuid == bindparam("uuid"),
    or_(*(JOBS.c.state == state for state in _LIVE)))
_QUEUED = (
    select(JOBS.c.uuid, JOBS.c.cores, JOBS.c.ram)
    .where(JOBS.c.state == JobState.QUEUED, JOBS.c.reused_job_uuid.is_(None),
           JOBS.c.queue_reason.is_(None))
    .order_by(JOBS.c.priority.desc(), JOBS.c.created_at, JOBS.c.uuid)
    .limit(bindparam("limit"))
)
_QUEUED_BY_SIZE = {
    None: _QUEUED,
    False: _QUEUED.where(JOBS.c.cores < WHOLE_CORE),
    True: _QUEUED.where(JOBS.c.cores >= WHOLE_CORE),
}
_PARENT_EXISTS = select(JOBS.c.uuid).where(JOBS.c.uuid == bindparam("uuid"))
# Built once, and without IN (...): an expanding parameter is recompiled per execution.
_TWINS = (
    select(JOBS.c.uuid, JOBS.c.state, JOBS.c.exit_code, JOBS.c.output_pdh,
           JOBS.c.log_pdh, JOBS.c.reused_job_uuid)
    .where(JOBS.c.reuse_key == bindparam("key"), JOBS.c.reuse.is_(True),
           JOBS.c.reuse_ineligible.is_(None), JOBS.c.impure.is_(None),
           or_(*(JOBS.c.state == state for state in (JobState.COMPLETE, *_LIVE))))
    .order_by(JOBS.c.created_at)
    .limit(50)
)
_CHILD = JOBS.alias("child")
_WAITING_ON_CHILDREN = exists().where(
    _CHILD.c.parent_uuid == JOBS.c.uuid,
    or_(_CHILD.c.state == JobState.QUEUED, _CHILD.c.state == JobState.RUNNING))
_USAGE = select(
    func.coalesce(func.sum(JOBS.c.cores), 0.0), func.coalesce(func.sum(JOBS.c.ram), 0)
    # A self-run job is the process that recorded it, not work placed on this host. A
    # job with unfinished children (a workflow runner) waits on them: it holds no
    # capacity meanwhile, or a runner's quarter core would keep a step that asks for
    # the whole node from ever starting on it.
).where(JOBS.c.state == JobState.RUNNING, JOBS.c.worker_host == bindparam("host"),
        JOBS.c.self_run.is_(False), ~_WAITING_ON_CHILDREN)


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_record(job: JobRow | Mapping[str, Any]) -> JobRecord:
    """The record of a row, or of a mapping holding every column.

    The spec's columns are JobSpec's fields by name, holding what ``spec_to_dict`` makes
    of them (tests/model/test_jobspec_fields.py checks the table has exactly those).
    """
    v = job._mapping if isinstance(job, Row) else job
    spec = spec_from_dict({name: v[name] for name in SPEC_FIELDS})
    return JobRecord(
        uuid=v["uuid"], spec=spec, state=JobState(v["state"]), parent_uuid=v["parent_uuid"],
        reuse_key=v["reuse_key"], created_at=datetime.fromtimestamp(v["created_at"], UTC),
        started_at=_when(v["started_at"]), finished_at=_when(v["finished_at"]),
        exit_code=v["exit_code"], output_pdh=v["output_pdh"], log_pdh=v["log_pdh"],
        failure_reason=v["failure_reason"], reused_job_uuid=v["reused_job_uuid"],
        cancel_requested=v["cancel_requested"], image_digest=v["image_digest"],
        reuse_ineligible=v["reuse_ineligible"], impure=v["impure"], backend=v["backend"],
        backend_job_id=v["backend_job_id"],
        end_reason=None if v["end_reason"] is None else EndReason(v["end_reason"]),
        peer_id=v["peer_id"], remote_owner=v["remote_owner"], queue_reason=v["queue_reason"],
    )


def get_job(connection: Connection, uuid: str) -> JobRow:
    job = connection.execute(_GET_JOB, {"uuid": uuid}).first()
    if job is None:
        raise JobNotFound(f"no job {uuid}")
    return job


def get_jobs(connection: Connection, uuids: Sequence[str]) -> list[JobRow]:
    """Rows in the order asked; JobNotFound names the first missing one."""
    found = {row.uuid: row for row in connection.execute(
        select(JOBS).where(JOBS.c.uuid.in_(list(uuids))))}
    for uuid in uuids:
        if uuid not in found:
            raise JobNotFound(f"no job {uuid}")
    return [found[uuid] for uuid in uuids]


def _set_state(
    connection: Connection, uuid: str, current: str, new: str, now: float, **values: Any
) -> dict[str, Any]:
    """Change the state (and other columns); returns every column that changed.

    A job that ends says why: ``end_reason`` (an EndReason) is required then.
    """
    check_transition(uuid, current, new)
    values["state"] = new
    if new == JobState.RUNNING:
        values.setdefault("started_at", now)
    elif new in FINAL_STATES:
        if not isinstance(values.get("end_reason"), EndReason):
            raise ValueError(f"job {uuid}: ending {new} needs an EndReason")
        values["end_reason"] = str(values["end_reason"])
        values["finished_at"] = now
        if current == JobState.RUNNING:  # only a claimed (so Running) job has a token
            revoke_job_tokens(connection, uuid)
    connection.execute(_UPDATE_JOB, {"_uuid": uuid, **values})
    connection.execute(_ADD_EVENT, {"job_uuid": uuid, "state": new, "at": now})
    return values


def insert_job(
    connection: Connection,
    cluster_id: str,
    spec: JobSpec,
    *,
    parent_uuid: str | None,
    key: str,
    output_problem: OutputCheck,
    image_digest: str | None = None,
    peer_id: str | None = None,
    remote_owner: str | None = None,
    queue_reason: str | None = None,
) -> dict[str, Any]:
    """Make the job's record: reusing a finished twin, joining a live one, or Queued.
    ``peer_id`` and ``remote_owner``: the peer cluster that submitted it and for whom.

    ``output_problem`` says what is wrong with a finished twin's output collection in
    the store (None: stored intact); a twin whose output is damaged is marked
    ineligible for reuse (see :func:`mark_output_damaged`) and passed over.
    Returns the new row's columns (no need to read it back).
    """
    if parent_uuid is not None and cluster_of(parent_uuid) == cluster_id and \
            connection.execute(_PARENT_EXISTS, {"uuid": parent_uuid}).first() is None:
        # No foreign key checks it (a parent may be another cluster's: schema 9).
        raise SubmitError(f"parent job: no job {parent_uuid} on this cluster")
    now = time.time()
    uuid = new_uuid(cluster_id, "job")
    twin = _twin(connection, key, output_problem) if spec.reuse else None
    row: dict[str, Any] = {column.name: None for column in JOBS.columns}
    row.update(
        spec_to_dict(spec), uuid=uuid, state=JobState.QUEUED, parent_uuid=parent_uuid,
        image_digest=image_digest, reuse_key=key, created_at=now, cancel_requested=False,
        self_run=False, peer_id=peer_id, remote_owner=remote_owner,
        queue_reason=queue_reason,
    )
    if twin is not None and twin.state == JobState.COMPLETE:
        # Reused: the record is born Complete (one row, one event; nothing was queued).
        row.update(state=JobState.COMPLETE, reused_job_uuid=twin.reused_job_uuid or twin.uuid,
                   started_at=now, finished_at=now, exit_code=twin.exit_code,
                   output_pdh=twin.output_pdh, log_pdh=twin.log_pdh,
                   end_reason=str(EndReason.REUSED), queue_reason=None)
        twin = None
    connection.execute(_INSERT_JOB, row)
    connection.execute(_ADD_EVENT, {"job_uuid": uuid, "state": row["state"], "at": now})
    if twin is not None:
        row.update(_follow(connection, uuid, twin, now))
    return row


def set_queue_reason(connection: Connection, uuid: str, reason: str | None) -> bool:
    """Hold a Queued job from the dispatchers with ``reason``, or release it (None).
    Whether the job was Queued."""
    done = connection.execute(update(JOBS).where(JOBS.c.uuid == uuid,
                                                 JOBS.c.state == JobState.QUEUED)
                              .values(queue_reason=reason))
    return bool(done.rowcount)


def held_jobs(connection: Connection) -> list[JobRow]:
    """Queued jobs held with a reason (pulls a restarted server must take up again)."""
    return list(connection.execute(select(JOBS).where(
        JOBS.c.state == JobState.QUEUED, JOBS.c.queue_reason.is_not(None))).all())


def mark_impure(connection: Connection, uuid: str, call: str) -> bool:
    """Record that job ``uuid``'s token made ``call``, which is not pure work: the job
    is never reused or joined (the first such call is kept). Whether it was news."""
    done = connection.execute(update(JOBS).where(JOBS.c.uuid == uuid, JOBS.c.impure.is_(None))
                              .values(impure=call))
    return bool(done.rowcount)


def reuse_candidates(connection: Connection, key: str) -> list[str]:
    """Output PDHs of the finished jobs that reuse with ``key`` would consider, in order:
    a caller verifies them before its write transaction, so that hashing a large output
    does not hold the write lock (the check inside it then finds them known good)."""
    rows = connection.execute(_TWINS, {"key": key}).all()
    return list(dict.fromkeys(
        row.output_pdh for row in rows
        if row.state == JobState.COMPLETE and row.exit_code == 0 and row.output_pdh))


def _twin(connection: Connection, key: str, output_problem: OutputCheck) -> Any:
    """A successful finished job with this key (its output stored intact), else a live
    one doing the work itself (not following another), else None."""
    rows: Sequence[Any] = connection.execute(_TWINS, {"key": key}).all()
    damaged: set[str] = set()
    for row in rows:
        if row.state != JobState.COMPLETE or row.exit_code != 0 or not row.output_pdh \
                or row.output_pdh in damaged:
            continue
        problem = output_problem(row.output_pdh)
        if problem is None:
            return row
        damaged.add(row.output_pdh)
        mark_output_damaged(connection, row.output_pdh, problem)
    for row in rows:
        if row.state in _LIVE and row.reused_job_uuid is None:
            return row
    return None


def mark_output_damaged(connection: Connection, pdh: str, problem: str) -> list[str]:
    """Make every finished job whose output is ``pdh`` ineligible for reuse, saying why;
    returns the uuids of all jobs with that output (those already ineligible keep their
    first reason).

    By output, not by reuse key: a damaged collection is damaged whoever made it, and the
    jobs that reused a job carry its output too. The next job with their key runs, and
    storing its output repairs the collection (a damaged stored copy is replaced).
    """
    reason = f"{problem} (found {datetime.now(UTC).isoformat(timespec='seconds')})"
    connection.execute(update(JOBS).where(JOBS.c.output_pdh == pdh,
                                          JOBS.c.reuse_ineligible.is_(None))
                       .values(reuse_ineligible=reason))
    return [str(uuid) for uuid in connection.execute(
        select(JOBS.c.uuid).where(JOBS.c.output_pdh == pdh)
        .order_by(JOBS.c.created_at)).scalars()]


def jobs_using(connection: Connection, pdhs: Sequence[str]) -> dict[str, list[str]]:
    """PDH -> uuids of the jobs whose output or log it is, for those of ``pdhs`` used."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(pdhs), 500):  # bounded IN lists
        chunk = list(pdhs[start:start + 500])
        rows = connection.execute(
            select(JOBS.c.uuid, JOBS.c.output_pdh, JOBS.c.log_pdh)
            .where(or_(JOBS.c.output_pdh.in_(chunk), JOBS.c.log_pdh.in_(chunk)))
            .order_by(JOBS.c.created_at)).all()
        for uuid, output_pdh, log_pdh in rows:
            for pdh in {output_pdh, log_pdh} & set(chunk):
                found.setdefault(pdh, []).append(uuid)
    return found


def jobs_with_digests(connection: Connection,
                      digests: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Collection digest (a PDH's hash, whatever its length) -> ``(job uuid, PDH)`` of the
    jobs whose output or log it is, oldest first; for what ``fsck`` found damaged."""
    found: dict[str, list[tuple[str, str]]] = {}
    for digest in dict.fromkeys(digests):
        prefix = f"{digest}+"
        rows = connection.execute(
            select(JOBS.c.uuid, JOBS.c.output_pdh, JOBS.c.log_pdh)
            .where(or_(JOBS.c.output_pdh.startswith(prefix, autoescape=True),
                       JOBS.c.log_pdh.startswith(prefix, autoescape=True)))
            .order_by(JOBS.c.created_at)).all()
        for uuid, output_pdh, log_pdh in rows:
            pdh = output_pdh if output_pdh and output_pdh.startswith(prefix) else log_pdh
            found.setdefault(digest, []).append((str(uuid), str(pdh)))
    return found


def _follow(connection: Connection, uuid: str, twin: JobRow, now: float) -> dict[str, Any]:
    """Join a live twin: mirror its state until it ends (see _settle_followers)."""
    leader = twin.reused_job_uuid or twin.uuid
    if twin.state == JobState.RUNNING:
        return _set_state(connection, uuid, JobState.QUEUED, JobState.RUNNING, now,
                          reused_job_uuid=leader)
    connection.execute(_UPDATE_JOB, {"_uuid": uuid, "reused_job_uuid": leader})
    return {"reused_job_uuid": leader}


def queued_candidates(connection: Connection, limit: int, *, whole_cores: bool | None = None,
                      ) -> list[tuple[str, float, int]]:
    """(uuid, cores, ram) of queued jobs that run themselves: highest priority, then oldest.
    ``whole_cores``: only jobs of one core or more (True) or under one core (False).

    Only three columns: the dispatcher reads this often and claims few of the rows.
    """
    rows = connection.execute(_QUEUED_BY_SIZE[whole_cores], {"limit": limit}).all()
    return [(uuid, float(cores), int(ram)) for uuid, cores, ram in rows]


def count_queued(connection: Connection) -> int:
    """How many jobs queued_candidates would offer (queued, running themselves)."""
    return int(connection.scalar(
        select(func.count()).select_from(JOBS)
        .where(JOBS.c.state == JobState.QUEUED, JOBS.c.reused_job_uuid.is_(None),
               JOBS.c.queue_reason.is_(None))) or 0)


def usage_on_host(connection: Connection, host: str) -> tuple[float, int]:
    """Cores and RAM held by jobs running on ``host`` (from every process)."""
    cores, ram = connection.execute(_USAGE, {"host": host}).one()
    return float(cores), int(ram)


LOCAL = "local"
"""The backend of jobs run by a worker process on a host (model.BACKENDS)."""


def claim(connection: Connection, uuid: str, current: str, worker: WorkerInfo | None,
          *, self_run: bool = False, backend: str = LOCAL) -> None:
    """Mark the job Running for ``worker`` (a local worker process), or for ``backend``
    with no worker of ours (``worker`` None: SLURM runs it; its id comes later, see
    :func:`set_backend_job_id`)."""
    now = time.time()
    where: dict[str, Any] = {"worker_host": None, "worker_pid": None,
                             "worker_pid_start": None}
    if worker is not None:
        where = {"worker_host": worker.host, "worker_pid": worker.pid,
                 "worker_pid_start": worker.pid_start}
    _set_state(connection, uuid, current, JobState.RUNNING, now, **where, backend=backend,
               backend_job_id=None, self_run=self_run)
    for follower, state in _followers(connection, uuid):
        _set_state(connection, follower, state, JobState.RUNNING, now)


def set_backend_job_id(connection: Connection, uuid: str, backend: str,
                       backend_job_id: str) -> bool:
    """Record the backend's id (a batch system's job id) of a running job that
    ``backend`` runs; False if the job no longer is such (it ended meanwhile)."""
    changed = connection.execute(
        update(JOBS).where(JOBS.c.uuid == uuid, JOBS.c.state == JobState.RUNNING,
                           JOBS.c.backend == backend)
        .values(backend_job_id=backend_job_id))
    return bool(changed.rowcount)


def requeue(connection: Connection, job: JobRow) -> None:
    """Send a running job back to Queued to be run afresh (its worker was lost, not at
    fault); the old worker's token stops working."""
    revoke_job_tokens(connection, job.uuid)
    _set_state(connection, job.uuid, job.state, JobState.QUEUED, time.time(),
               worker_host=None, worker_pid=None, worker_pid_start=None, started_at=None,
               command_pgid=None, command_pgid_start=None, backend=None,
               backend_job_id=None)


def times_started(connection: Connection, uuid: str) -> int:
    """How many times the job went to Running (its events say)."""
    return int(connection.scalar(
        select(func.count()).select_from(EVENTS)
        .where(EVENTS.c.job_uuid == uuid, EVENTS.c.state == JobState.RUNNING)) or 0)


def _followers(connection: Connection, uuid: str) -> list[tuple[str, str]]:
    rows = connection.execute(_FOLLOWERS, {"uuid": uuid}).all()
    return [(row.uuid, row.state) for row in rows]


def set_process(connection: Connection, uuid: str, pgid: int, ticks: int) -> bool:
    """Record the command's process group; returns whether a cancel is pending."""
    connection.execute(_UPDATE_JOB, {"_uuid": uuid, "command_pgid": pgid,
                                     "command_pgid_start": ticks})
    return bool(connection.execute(
        select(JOBS.c.cancel_requested).where(JOBS.c.uuid == uuid)).scalar())


def finish(connection: Connection, job: JobRow, outcome: JobOutcome) -> dict[str, Any]:
    """Record a job's end, and settle the jobs that joined it; returns the job's columns.

    A job whose cancel was requested ends Cancelled whatever its command did. An
    outcome without an end reason (from a client before schema 8) gets EXIT if it has
    an exit code, else ERROR (CANCELLED if it says Cancelled).
    """
    now = time.time()
    state = outcome.state
    reason = outcome.failure_reason
    output_pdh = outcome.output_pdh
    end_reason = outcome.end_reason or _derived_end_reason(outcome)
    if job.cancel_requested and state == JobState.COMPLETE:
        # What a killed command left is not a result: keep its logs, not its output.
        state, reason, output_pdh = JobState.CANCELLED, "cancelled", None
    if state == JobState.CANCELLED:
        end_reason = EndReason.CANCELLED
    changed = _set_state(connection, job.uuid, job.state, state, now,
                         exit_code=outcome.exit_code, output_pdh=output_pdh,
                         log_pdh=outcome.log_pdh, failure_reason=reason,
                         end_reason=end_reason)
    _settle_followers(connection, job.uuid, state, outcome, now)
    return {**job._mapping, **changed}


def _derived_end_reason(outcome: JobOutcome) -> EndReason:
    """For a job ending other than Cancelled (``finish`` says CANCELLED for those)."""
    return EndReason.ERROR if outcome.exit_code is None else EndReason.EXIT


def _settle_followers(
    connection: Connection, leader: str, state: str, outcome: JobOutcome | None, now: float
) -> None:
    """The leader ended: its followers take its result if it succeeded, as reuse would;
    otherwise they run themselves (a failure is never handed on, joined or reused). A
    leader that turned impure while it ran hands on nothing either: its result is not
    a function of the key the followers share with it."""
    succeeded = state == JobState.COMPLETE and outcome is not None and outcome.exit_code == 0
    if succeeded:
        impure = connection.execute(select(JOBS.c.impure).where(JOBS.c.uuid == leader)).scalar()
        succeeded = impure is None
    for follower, follower_state in _followers(connection, leader):
        if succeeded and outcome is not None:
            _set_state(connection, follower, follower_state, JobState.COMPLETE, now,
                       exit_code=outcome.exit_code, output_pdh=outcome.output_pdh,
                       log_pdh=outcome.log_pdh, end_reason=EndReason.REUSED)
        elif follower_state == JobState.RUNNING:
            # The twin failed or was cancelled for its own reasons: run this one itself.
            _set_state(connection, follower, follower_state, JobState.QUEUED, now,
                       reused_job_uuid=None, started_at=None)
        else:
            connection.execute(_UPDATE_JOB, {"_uuid": follower, "reused_job_uuid": None})


def descendants(connection: Connection, uuid: str) -> list[JobRow]:
    """Every unfinished job below ``uuid`` in the process tree."""
    found: list[JobRow] = []
    frontier = [uuid]
    while frontier:
        children = connection.execute(
            select(JOBS).where(JOBS.c.parent_uuid.in_(frontier))).all()
        found.extend(child for child in children if child.state not in FINAL_STATES)
        frontier = [child.uuid for child in children]
    return found


def request_cancel(connection: Connection, job: JobRow) -> bool:
    """Cancel a queued job now; mark a running one for its worker. True if it was running."""
    if job.state in FINAL_STATES:
        return False
    if job.state == JobState.QUEUED or job.backend is None:
        # Queued, or following a twin: nothing of its own is running.
        now = time.time()
        _set_state(connection, job.uuid, job.state, JobState.CANCELLED, now,
                   failure_reason="cancelled", end_reason=EndReason.CANCELLED)
        _settle_followers(connection, job.uuid, JobState.CANCELLED, None, now)
        return False
    connection.execute(_UPDATE_JOB, {"_uuid": job.uuid, "cancel_requested": True})
    return True


def events_after(connection: Connection, after_id: int, limit: int = 1000) -> list[JobEvent]:
    rows = connection.execute(
        select(EVENTS).where(EVENTS.c.id > after_id).order_by(EVENTS.c.id).limit(limit)
    ).all()
    return [JobEvent(row.id, row.job_uuid, JobState(row.state), datetime.fromtimestamp(row.at, UTC))
            for row in rows]


def last_event_id(connection: Connection) -> int:
    return int(connection.scalar(select(func.coalesce(func.max(EVENTS.c.id), 0))) or 0)


def running_on_host(connection: Connection, host: str) -> list[JobRow]:
    """Running jobs whose local worker runs on ``host``."""
    return list(connection.execute(
        select(JOBS).where(JOBS.c.state == JobState.RUNNING, JOBS.c.worker_host == host)
    ).all())


def running_on_backend(connection: Connection, backend: str) -> list[JobRow]:
    """Running jobs that ``backend`` runs (not those following a twin)."""
    return list(connection.execute(
        select(JOBS).where(JOBS.c.state == JobState.RUNNING, JOBS.c.backend == backend)
    ).all())


def list_jobs(
    connection: Connection,
    *,
    parent_uuid: str | None,
    top_level: bool,
    only_states: frozenset[str] | None,
    limit: int,
    after: str | None = None,
) -> list[JobRow]:
    """Newest first, ties by UUID (descending): a total order, so a caller pages through
    with ``after`` = the last UUID of the page before, and jobs created meanwhile (newer
    than any listed) never repeat or shift the rest. ``after`` names a job
    (JobNotFound otherwise); its own row holds the exact creation time to continue from.
    """
    query = select(JOBS).order_by(JOBS.c.created_at.desc(), JOBS.c.uuid.desc()).limit(limit)
    if after is not None:
        created = get_job(connection, after).created_at
        query = query.where(or_(JOBS.c.created_at < created,
                                (JOBS.c.created_at == created) & (JOBS.c.uuid < after)))
    if parent_uuid is not None:
        query = query.where(JOBS.c.parent_uuid == parent_uuid)
    if top_level:
        query = query.where(JOBS.c.parent_uuid.is_(None))
    if only_states is not None:
        query = query.where(JOBS.c.state.in_(sorted(only_states)))
    return list(connection.execute(query).all())
