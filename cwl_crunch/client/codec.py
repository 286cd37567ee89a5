"""Job specs to and from plain JSON-able dicts (database columns, HTTP bodies)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cwl_crunch.client.base import CollectionMount, JobSpec, LiteralMount, Mount
from cwl_crunch.errors import SubmitError


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


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    return {
        "command": list(spec.command),
        "name": spec.name,
        "environment": dict(spec.environment),
        "mounts": mounts_to_dict(spec.mounts),
        "output_path": spec.output_path,
        "cwd": spec.cwd,
        "root": spec.root,
        "stdin": spec.stdin,
        "stdout": spec.stdout,
        "stderr": spec.stderr,
        "image": spec.image,
        "binds": dict(spec.binds),
        "network": spec.network,
        "cores": spec.cores,
        "ram": spec.ram,
        "gpus": spec.gpus,
        "time_limit": spec.time_limit,
        "priority": spec.priority,
        "reuse": spec.reuse,
        "properties": dict(spec.properties),
    }


_SPEC_FIELDS = frozenset(field.name for field in dataclasses.fields(JobSpec))


def spec_from_dict(data: Mapping[str, Any]) -> JobSpec:
    unknown = sorted(set(data) - _SPEC_FIELDS)
    if unknown:
        raise SubmitError(f"unknown job field(s): {', '.join(unknown)}")
    if "command" not in data or isinstance(data["command"], str):
        raise SubmitError("command: a list of strings is required")
    fields = dict(data)
    fields["command"] = tuple(fields["command"])
    fields["mounts"] = mounts_from_dict(fields.get("mounts") or {})
    return JobSpec(**fields)
