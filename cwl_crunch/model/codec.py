"""Job specs to and from plain JSON-able dicts (database columns, HTTP bodies)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cwl_crunch.errors import SubmitError
from cwl_crunch.model import (
    Claim,
    CollectionEntry,
    CollectionMount,
    EndReason,
    JobEvent,
    JobOutcome,
    JobRecord,
    JobSpec,
    JobState,
    LiteralMount,
    Mount,
    WorkerInfo,
)


def mount_to_dict(mount: Mount) -> dict[str, Any]:
    if isinstance(mount, CollectionMount):
        return {"kind": "collection", "pdh": mount.pdh, "path": mount.path,
                "writable": mount.writable}
    return {"kind": "literal", "content": mount.content, "writable": mount.writable,
            "executable": mount.executable}


def mount_from_dict(target: str, data: Mapping[str, Any]) -> Mount:
    if not isinstance(data, Mapping):
        raise SubmitError(f"mount {target!r}: expected an object, got {type(data).__name__}")
    kind = data.get("kind")
    try:
        if kind == "collection":
            return CollectionMount(str(data["pdh"]), str(data.get("path", "")),
                                   bool(data.get("writable", False)))
        if kind == "literal":
            return LiteralMount(str(data["content"]), bool(data.get("writable", False)),
                                bool(data.get("executable", False)))
    except KeyError as missing:
        raise SubmitError(f"mount {target!r}: missing field {missing}") from None
    raise SubmitError(f"mount {target!r}: kind must be 'collection' or 'literal', not {kind!r}")


def mounts_to_dict(mounts: Mapping[str, Mount]) -> dict[str, dict[str, Any]]:
    return {target: mount_to_dict(mount) for target, mount in sorted(mounts.items())}


def mounts_from_dict(data: Mapping[str, Mapping[str, Any]]) -> dict[str, Mount]:
    return {target: mount_from_dict(target, mount) for target, mount in data.items()}


SPEC_FIELDS = tuple(field.name for field in dataclasses.fields(JobSpec))
"""JobSpec's fields in order: the keys of a spec's dict, and the spec columns of the
jobs table (``records.jobs`` reads and writes them by these names)."""
_TO_JSON: dict[str, Callable[[Any], Any]] = {
    "command": list, "environment": dict, "mounts": mounts_to_dict, "binds": dict,
    "properties": dict}
_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "command": tuple, "mounts": lambda mounts: mounts_from_dict(mounts or {})}
"""The fields not stored as they are (the others are JSON values already)."""


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """Every field by name, in JobSpec's order: the wire format and the spec's columns."""
    data = {name: getattr(spec, name) for name in SPEC_FIELDS}
    for name, convert in _TO_JSON.items():
        data[name] = convert(data[name])
    return data


def spec_from_dict(data: Mapping[str, Any]) -> JobSpec:
    unknown = sorted(set(data).difference(SPEC_FIELDS))
    if unknown:
        raise SubmitError(f"unknown job field(s): {', '.join(unknown)}")
    if "command" not in data or isinstance(data["command"], str):
        raise SubmitError("command: a list of strings is required")
    fields = dict(data)
    for name, convert in _FROM_JSON.items():
        if name in fields:
            fields[name] = convert(fields[name])
    return JobSpec(**fields)


# Records and the other values that cross the HTTP API -----------------------------------
def _time(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def record_to_dict(record: JobRecord) -> dict[str, Any]:
    return {
        "uuid": record.uuid, "spec": spec_to_dict(record.spec), "state": record.state,
        "parent_uuid": record.parent_uuid, "reuse_key": record.reuse_key,
        "created_at": _time(record.created_at), "started_at": _time(record.started_at),
        "finished_at": _time(record.finished_at), "exit_code": record.exit_code,
        "output_pdh": record.output_pdh, "log_pdh": record.log_pdh,
        "failure_reason": record.failure_reason, "reused_job_uuid": record.reused_job_uuid,
        "cancel_requested": record.cancel_requested, "image_digest": record.image_digest,
        "reuse_ineligible": record.reuse_ineligible, "impure": record.impure,
        "backend": record.backend,
        "backend_job_id": record.backend_job_id,
        "end_reason": None if record.end_reason is None else str(record.end_reason),
        "peer_id": record.peer_id, "remote_owner": record.remote_owner,
        "queue_reason": record.queue_reason,
    }


def record_from_dict(data: Mapping[str, Any]) -> JobRecord:
    fields = dict(data)
    fields["spec"] = spec_from_dict(fields["spec"])
    created = _datetime(fields["created_at"])
    assert created is not None
    fields["created_at"] = created
    fields["started_at"] = _datetime(fields.get("started_at"))
    fields["finished_at"] = _datetime(fields.get("finished_at"))
    end_reason = fields.get("end_reason")
    fields["end_reason"] = None if end_reason is None else EndReason(end_reason)
    fields["state"] = JobState(fields["state"])
    return JobRecord(**fields)


def claim_to_dict(claim: Claim) -> dict[str, Any]:
    return {"job": record_to_dict(claim.job), "token": claim.token}


def claim_from_dict(data: Mapping[str, Any]) -> Claim:
    return Claim(record_from_dict(data["job"]), str(data["token"]))


def event_to_dict(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "job_uuid": event.job_uuid, "state": event.state,
            "at": event.at.timestamp()}


def event_from_dict(data: Mapping[str, Any]) -> JobEvent:
    at = _datetime(data["at"])
    assert at is not None
    return JobEvent(int(data["id"]), str(data["job_uuid"]), JobState(data["state"]), at)


def entry_to_dict(entry: CollectionEntry) -> dict[str, Any]:
    return {"path": entry.path, "kind": entry.kind, "size": entry.size}


def entry_from_dict(data: Mapping[str, Any]) -> CollectionEntry:
    return CollectionEntry(str(data["path"]), data["kind"], int(data["size"]))


def outcome_to_dict(outcome: JobOutcome) -> dict[str, Any]:
    fields = dataclasses.asdict(outcome)
    fields["end_reason"] = None if outcome.end_reason is None else str(outcome.end_reason)
    return fields


def outcome_from_dict(data: Mapping[str, Any]) -> JobOutcome:
    fields = dict(data)
    end_reason = fields.get("end_reason")
    fields["end_reason"] = None if end_reason is None else EndReason(end_reason)
    fields["state"] = JobState(fields["state"])
    return JobOutcome(**fields)


def worker_to_dict(worker: WorkerInfo) -> dict[str, Any]:
    return dataclasses.asdict(worker)
