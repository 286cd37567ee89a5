"""Data residency as callers see it: whether a collection must stay on its cluster (and
why, and which job made it so), or was released by a rule; the release rules; and
where a collection lives among a cluster and its peers. JSON codecs of each."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

RESIDENCY_VALUES = ("travel", "resident")
"""The config's ``residency``: what a collection stored or made here is by default."""


@dataclasses.dataclass(frozen=True)
class CollectionResidency:
    """A collection's residency record on its cluster (no record: it may travel)."""

    pdh: str
    state: str
    """"resident" (it stays) or "released" (derived from resident data, let go by a
    release rule)."""
    reason: str
    job_uuid: str | None = None
    """The job whose end made it so (None: a person stored it so)."""
    source_pdh: str | None = None
    """The resident collection it derives from."""
    rule_uuid: str | None = None
    """The release rule that let it go."""
    since: float = 0.0

    @property
    def resident(self) -> bool:
        return self.state == "resident"

    def describe(self) -> str:
        """One line for a person: "resident: made by job ... (since ...)"."""
        return f"{self.state}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class ReleaseRuleRecord:
    """An image (and optionally a command prefix) whose jobs' outputs may travel even
    when they read resident data."""

    uuid: str
    image_digest: str
    command_prefix: tuple[str, ...] | None
    note: str
    created_at: float
    removed_at: float | None = None


@dataclasses.dataclass(frozen=True)
class Whereabouts:
    """Where a collection is: held on a cluster, and whether it is resident there."""

    cluster_id: str
    held: bool
    resident: bool = False
    reason: str = ""


def residency_to_dict(value: CollectionResidency | None) -> dict[str, Any] | None:
    return None if value is None else dataclasses.asdict(value)


def residency_from_dict(data: Mapping[str, Any] | None) -> CollectionResidency | None:
    if data is None:
        return None
    return CollectionResidency(
        pdh=str(data["pdh"]), state=str(data["state"]), reason=str(data["reason"]),
        job_uuid=data.get("job_uuid"), source_pdh=data.get("source_pdh"),
        rule_uuid=data.get("rule_uuid"), since=float(data.get("since") or 0.0))


def rule_to_dict(rule: ReleaseRuleRecord) -> dict[str, Any]:
    data = dataclasses.asdict(rule)
    data["command_prefix"] = None if rule.command_prefix is None else list(rule.command_prefix)
    return data


def rule_from_dict(data: Mapping[str, Any]) -> ReleaseRuleRecord:
    prefix: Sequence[str] | None = data.get("command_prefix")
    return ReleaseRuleRecord(
        uuid=str(data["uuid"]), image_digest=str(data["image_digest"]),
        command_prefix=None if prefix is None else tuple(str(part) for part in prefix),
        note=str(data.get("note", "")), created_at=float(data["created_at"]),
        removed_at=data.get("removed_at"))


def whereabouts_to_dict(value: Whereabouts) -> dict[str, Any]:
    return dataclasses.asdict(value)


def whereabouts_from_dict(data: Mapping[str, Any]) -> Whereabouts:
    return Whereabouts(cluster_id=str(data["cluster_id"]), held=bool(data["held"]),
                       resident=bool(data.get("resident", False)),
                       reason=str(data.get("reason", "")))
