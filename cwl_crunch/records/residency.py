"""Data residency in the records: which collections must stay on this cluster, which
derived ones a release rule let go, the rules, and the decision at a job's end.

The decision is the cluster's, from its own records, never the runner's or a request's:
a job that mounted a resident collection, or whose token read the contents of one
through the API, made resident outputs and logs, unless its image (by content digest)
and command match a release rule in force when it ends. Then its output is released
(its log stays: what a command prints was not what the rule approved). Content
addressing makes a PDH one thing: the first record of it stands, except that a person
may always make a collection resident.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from cwl_crunch.config import Config
from cwl_crunch.errors import RuleNotFound
from cwl_crunch.model import JobOutcome
from cwl_crunch.model.residency import CollectionResidency, ReleaseRuleRecord
from cwl_crunch.model.runs import is_made_runner
from cwl_crunch.records import access, jobs
from cwl_crunch.records.ids import new_uuid
from cwl_crunch.records.models import Job, ReleaseRule, Residency

JOBS = cast(Table, Job.__table__)
RESIDENCY = cast(Table, Residency.__table__)
RULES = cast(Table, ReleaseRule.__table__)
RESIDENT, RELEASED = "resident", "released"
_LOOKUP_BATCH = 500


def _to_residency(row: Any) -> CollectionResidency:
    return CollectionResidency(pdh=row.pdh, state=row.state, reason=row.reason,
                               job_uuid=row.job_uuid, source_pdh=row.source_pdh,
                               rule_uuid=row.rule_uuid, since=row.created_at)


def residency_of(connection: Connection, pdh: str) -> CollectionResidency | None:
    row = connection.execute(select(RESIDENCY).where(RESIDENCY.c.pdh == pdh)).first()
    return None if row is None else _to_residency(row)


def residencies(connection: Connection, pdhs: Sequence[str]) -> dict[str, CollectionResidency]:
    """The records of those of ``pdhs`` that have one."""
    found: dict[str, CollectionResidency] = {}
    unique = list(dict.fromkeys(pdhs))
    for start in range(0, len(unique), _LOOKUP_BATCH):
        rows = connection.execute(select(RESIDENCY).where(
            RESIDENCY.c.pdh.in_(unique[start:start + _LOOKUP_BATCH])))
        found.update((row.pdh, _to_residency(row)) for row in rows)
    return found


def _record(connection: Connection, pdh: str, state: str, reason: str, *,
            job_uuid: str | None = None, source_pdh: str | None = None,
            rule_uuid: str | None = None, override: bool = False) -> None:
    values = {"state": state, "reason": reason, "job_uuid": job_uuid,
              "source_pdh": source_pdh, "rule_uuid": rule_uuid, "created_at": time.time()}
    known = connection.execute(select(RESIDENCY.c.state).where(RESIDENCY.c.pdh == pdh)).first()
    if known is None:
        connection.execute(insert(RESIDENCY).values(pdh=pdh, **values))
    elif override and known.state != state:
        connection.execute(update(RESIDENCY).where(RESIDENCY.c.pdh == pdh).values(**values))


def make_resident(connection: Connection, pdh: str, reason: str) -> None:
    """A person's decision: ``pdh`` stays here (also if a rule had released it)."""
    _record(connection, pdh, RESIDENT, reason, override=True)


def resident_cause(connection: Connection, job: Mapping[str, Any]) -> str | None:
    """The resident collection (unreleased) that job ``job`` (its row's columns)
    mounted, or whose contents its token read; None if there is none."""
    pdhs = [mount["pdh"] for mount in (job["mounts"] or {}).values()
            if isinstance(mount, dict) and mount.get("pdh")]
    if job.get("read_resident"):
        pdhs.append(job["read_resident"])
    found = residencies(connection, pdhs)
    return next((pdh for pdh in pdhs if pdh in found and found[pdh].resident), None)


def note_read(connection: Connection, job_uuid: str, pdh: str) -> None:
    """Job ``job_uuid``'s token read the contents of resident collection ``pdh``."""
    connection.execute(update(JOBS).where(JOBS.c.uuid == job_uuid,
                                          JOBS.c.read_resident.is_(None))
                       .values(read_resident=pdh))


def is_runner(job: Mapping[str, Any]) -> bool:
    """A workflow runner's job, as a cluster makes one (model.runs.runner_spec): for a
    peer (``peer_id``), or for a person (no parent). Its outputs are copies of what its
    steps made, or values from what it was allowed to read, so they follow what it read,
    never the cluster's default. A step that names the runner as its command is not one."""
    return is_made_runner(job["command"] or [], job.get("peer_id"), job.get("parent_uuid"))


RELEASABLE_ENVIRONMENT = frozenset({"HOME", "TMPDIR"})
"""What a released job's environment may set (what every CWL step gets): a variable
such as PYTHONPATH or LD_PRELOAD would run other code under the approved command."""

SharesBlocks = Callable[[str, str], bool]
"""(output PDH, resident PDH) -> whether the output holds blocks of the resident one."""


def end_job(connection: Connection, job: Any, outcome: JobOutcome, config: Config, *,
            shares_blocks: SharesBlocks | None = None) -> dict[str, Any]:
    """Record job ``job``'s end (``jobs.finish``) and what stays of what it made: the one
    way every job ends (the core's worker reports, the dispatchers' salvage). A job of a
    peer's run that read resident data keeps its failure reason here too (its command
    could have put anything there, as the name of a symlink out of its job dir)."""
    cause = resident_cause(connection, dict(job._mapping))
    if cause is not None and outcome.failure_reason \
            and access.peer_root(connection, job.uuid) is not None:
        outcome = dataclasses.replace(outcome, failure_reason=(
            f"{outcome.end_reason or 'ended'}: why stays on cluster {config.cluster_id} "
            f"with its log (the job read resident collection {cause})"))
    ended = jobs.finish(connection, job, outcome)
    settle_end(connection, ended, default_resident=config.residency == "resident",
               cluster_id=config.cluster_id, shares_blocks=shares_blocks)
    return ended


def _release_blocker(job: Mapping[str, Any], source: str,
                     shares_blocks: SharesBlocks | None) -> str | None:
    """Why a job a rule names may still not have its output released, or None."""
    extra = sorted(set(job.get("environment") or {}) - RELEASABLE_ENVIRONMENT)
    if extra:
        return f"its environment sets {', '.join(extra)}, which no rule approves"
    output = job["output_pdh"]
    if output is not None and shares_blocks is not None and shares_blocks(output, source):
        return f"its output holds blocks of resident collection {source} itself"
    return None


def settle_end(connection: Connection, job: Mapping[str, Any], *,
               default_resident: bool, cluster_id: str,
               shares_blocks: SharesBlocks | None = None) -> None:
    """At a job's end (``job``: its row's columns after the end): record whether its
    output and log collections stay here."""
    uuid, output, log = job["uuid"], job["output_pdh"], job["log_pdh"]
    if output is None and log is None:
        return
    source = resident_cause(connection, job)
    if source is None:
        if default_resident and not is_runner(job):
            why = f"made by job {uuid} on cluster {cluster_id}, where everything stays"
            for pdh in (output, log):
                if pdh is not None:
                    _record(connection, pdh, RESIDENT, why, job_uuid=uuid)
        return
    rule = matching_rule(connection, job["image_digest"], job["command"] or [])
    blocker = _release_blocker(job, source, shares_blocks) if rule is not None else None
    if output is not None:
        if rule is not None and blocker is not None:
            _record(connection, output, RESIDENT,
                    f"made by job {uuid} from resident collection {source}; rule "
                    f"{rule.uuid} names its image and command, but {blocker}",
                    job_uuid=uuid, source_pdh=source)
        elif rule is not None:
            _record(connection, output, RELEASED,
                    f"made by job {uuid} from resident collection {source}; released "
                    f"by rule {rule.uuid} ({rule.note})", job_uuid=uuid,
                    source_pdh=source, rule_uuid=rule.uuid)
        else:
            _record(connection, output, RESIDENT,
                    f"made by job {uuid} from resident collection {source}, and no "
                    "release rule names its image and command", job_uuid=uuid,
                    source_pdh=source)
    if log is not None:
        _record(connection, log, RESIDENT,
                f"the log of job {uuid}, which read resident collection {source}",
                job_uuid=uuid, source_pdh=source)


def settle_upload(connection: Connection, job_uuid: str, pdh: str, *,
                  default_resident: bool, cluster_id: str) -> None:
    """Job ``job_uuid``'s token stored collection ``pdh``: it stays here if the job
    read resident data (or the cluster keeps everything, for jobs but runners)."""
    row = connection.execute(select(JOBS.c.uuid, JOBS.c.mounts, JOBS.c.read_resident,
                                    JOBS.c.command, JOBS.c.peer_id, JOBS.c.parent_uuid)
                             .where(JOBS.c.uuid == job_uuid)).first()
    if row is None:
        return
    job = dict(row._mapping)
    source = resident_cause(connection, job)
    if source is not None:
        _record(connection, pdh, RESIDENT, f"stored by job {job_uuid}, which read "
                f"resident collection {source}", job_uuid=job_uuid, source_pdh=source)
    elif default_resident and not is_runner(job):
        _record(connection, pdh, RESIDENT, f"stored by job {job_uuid} on cluster "
                f"{cluster_id}, where everything stays", job_uuid=job_uuid)


# Release rules ------------------------------------------------------------------------
def _to_rule(row: Any) -> ReleaseRuleRecord:
    return ReleaseRuleRecord(uuid=row.uuid, image_digest=row.image_digest,
                             command_prefix=None if row.command_prefix is None
                             else tuple(row.command_prefix),
                             note=row.note, created_at=row.created_at,
                             removed_at=row.removed_at)


def add_rule(connection: Connection, cluster_id: str, image_digest: str,
             command_prefix: Sequence[str] | None, note: str) -> ReleaseRuleRecord:
    uuid = new_uuid(cluster_id, "rel")
    connection.execute(insert(RULES).values(
        uuid=uuid, image_digest=image_digest,
        command_prefix=None if command_prefix is None else list(command_prefix),
        note=note, created_at=time.time(), removed_at=None))
    rule = connection.execute(select(RULES).where(RULES.c.uuid == uuid)).one()
    return _to_rule(rule)


def list_rules(connection: Connection, *, removed: bool = False) -> list[ReleaseRuleRecord]:
    query = select(RULES).order_by(RULES.c.created_at)
    if not removed:
        query = query.where(RULES.c.removed_at.is_(None))
    return [_to_rule(row) for row in connection.execute(query)]


def remove_rule(connection: Connection, uuid: str) -> ReleaseRuleRecord:
    done = connection.execute(update(RULES).where(RULES.c.uuid == uuid,
                                                  RULES.c.removed_at.is_(None))
                              .values(removed_at=time.time()))
    if done.rowcount == 0:
        raise RuleNotFound(f"no release rule {uuid} in force "
                           "(see cwl-crunch release list)")
    return _to_rule(connection.execute(select(RULES).where(RULES.c.uuid == uuid)).one())


def matching_rule(connection: Connection, image_digest: str | None,
                  command: Iterable[str]) -> ReleaseRuleRecord | None:
    """The first rule in force naming ``image_digest`` whose command prefix (if it has
    one) begins ``command``. A job run on the host (no image digest) matches none: its
    program is whatever the host has at that path, which no digest pins."""
    if not image_digest:
        return None
    argv = list(command)
    for rule in list_rules(connection):
        if rule.image_digest != image_digest:
            continue
        prefix = list(rule.command_prefix or ())
        if argv[:len(prefix)] == prefix:
            return dataclasses.replace(rule)
    return None
