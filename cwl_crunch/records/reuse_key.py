"""The reuse key: a hash of everything that determines a job's result.

Resources (cores, RAM, GPUs, time limit, priority) are left out: they change how fast a
job runs, not what it produces. Names and properties are labels, also left out.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cwl_crunch.model import CollectionMount, JobSpec

KEY_VERSION = 1


def reuse_key(spec: JobSpec, image_digest: str | None = None) -> str:
    mounts: dict[str, Any] = {}
    for target, mount in sorted(spec.mounts.items()):
        if isinstance(mount, CollectionMount):
            mounts[target] = ["collection", mount.pdh, mount.path, mount.writable]
        else:
            content = hashlib.sha256(mount.content.encode()).hexdigest()
            mounts[target] = ["literal", content, mount.writable, mount.executable]
    material = {
        "v": KEY_VERSION,
        "command": list(spec.command),
        "environment": dict(sorted(spec.environment.items())),
        "image": image_digest or spec.image,
        "mounts": mounts,
        "output_path": spec.output_path,
        "cwd": spec.cwd,
        "root": spec.root,
        "stdin": spec.stdin,
        "stdout": spec.stdout,
        "stderr": spec.stderr,
    }
    # Only when set: keys of jobs without them stay what they were before these existed.
    if spec.binds:
        material["binds"] = dict(sorted(spec.binds.items()))
    if spec.network:
        material["network"] = True
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
