"""The reuse key: a hash of everything that determines a job's result.

Every JobSpec field goes in except those in NOT_IN_REUSE_KEY: resources change how fast a
job runs, not what it produces, and names, properties and the reuse switch are labels.
A field added to JobSpec therefore enters the key unless it is named there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from cwl_crunch.model import CollectionMount, JobSpec, Mount

KEY_VERSION = 1

NOT_IN_REUSE_KEY = frozenset({
    "cores", "ram", "gpus", "time_limit", "priority",  # resources: how fast, not what
    "name", "properties",  # labels
    "reuse",  # whether to reuse, not what the job does
})
"""JobSpec's fields that leave the key alone (see the module docstring)."""

_KEY_V1_FIELDS = frozenset({
    "command", "environment", "image", "mounts", "output_path", "cwd", "root",
    "stdin", "stdout", "stderr",
})
"""Fields always in the key. Any other (binds, network, and those added after them) is
in it only when it differs from its default, so that the keys of jobs that leave it
unset stay what they were before it existed: databases hold such keys."""


def _mounts(mounts: Mapping[str, Mount]) -> dict[str, list[Any]]:
    """A literal's content as its hash (it can be large); the kind tells the two apart."""
    encoded: dict[str, list[Any]] = {}
    for target, mount in sorted(mounts.items()):
        if isinstance(mount, CollectionMount):
            encoded[target] = ["collection", mount.pdh, mount.path, mount.writable]
        else:
            content = hashlib.sha256(mount.content.encode()).hexdigest()
            encoded[target] = ["literal", content, mount.writable, mount.executable]
    return encoded


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(sorted(value.items()))
    return value


_ENCODE: dict[str, Callable[[Any], Any]] = {"mounts": _mounts}


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


_KEYED_FIELDS = tuple((field.name, field.name in _KEY_V1_FIELDS, _default(field))
                      for field in dataclasses.fields(JobSpec)
                      if field.name not in NOT_IN_REUSE_KEY)


def reuse_key(spec: JobSpec, image_digest: str | None = None) -> str:
    """``image_digest``: what ``spec.image`` resolved to, which stands for it."""
    material: dict[str, Any] = {"v": KEY_VERSION}
    for name, always, default in _KEYED_FIELDS:
        value = getattr(spec, name)
        if always or value != default:
            material[name] = _ENCODE.get(name, _plain)(value)
    material["image"] = image_digest or spec.image
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
