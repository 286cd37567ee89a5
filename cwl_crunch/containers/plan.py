"""What a job's container looks like: a pure function of the job, no engine calls.

The job directory is bind-mounted read-write where the command sees it (``JobSpec.root``,
else ``/cwl-crunch/job``); every read-only collection mount is bound again, read-only, on
top (they are links to the store's blocks); ``JobSpec.binds`` show job-dir paths at
other absolute places. No network unless the job asks for one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath
from typing import Any

from cwl_crunch.model import CollectionMount, JobSpec

CONTAINER_ROOT = "/cwl-crunch/job"
"""Where a job with an image but no ``root`` sees its job directory."""
LABEL = "cwl-crunch.job"
"""Container label holding the job's UUID: how leftovers are found and removed."""
NAME_PREFIX = "cwl-crunch-"


@dataclasses.dataclass(frozen=True)
class Bind:
    source: str
    target: str
    read_only: bool


@dataclasses.dataclass(frozen=True)
class ContainerRun:
    """Everything the supervisor process needs, as JSON across the process boundary."""

    engine_url: str
    job_uuid: str
    image: str
    """The content digest: what runs."""
    image_name: str
    """What the job asked for, for messages."""
    command: list[str]
    environment: dict[str, str]
    working_dir: str
    binds: list[Bind]
    network: bool
    user: str
    keep_id: bool
    """Rootless Podman: map the user's own uid into the container (``--userns=keep-id``)."""
    attach_stdin: bool
    failure_file: str
    """Host path where the supervisor explains a container that could not run."""

    @property
    def name(self) -> str:
        return container_name(self.job_uuid)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ContainerRun:
        data: dict[str, Any] = json.loads(text)
        data["binds"] = [Bind(**bind) for bind in data["binds"]]
        return cls(**data)


def container_name(job_uuid: str) -> str:
    return f"{NAME_PREFIX}{job_uuid}"


def container_root(spec: JobSpec) -> str:
    return spec.root or CONTAINER_ROOT


def plan_binds(spec: JobSpec, job_dir: Path) -> list[Bind]:
    """The job dir, its read-only mounts and the extra binds, parents before children."""
    root = PurePosixPath(container_root(spec))
    read_only = sorted(target for target, mount in spec.mounts.items()
                       if isinstance(mount, CollectionMount) and not mount.writable)
    binds = [Bind(str(job_dir), str(root), False)]
    binds += [Bind(str(job_dir / target), str(root / target), True) for target in read_only]
    for inside, target in spec.binds.items():
        binds.append(Bind(str(job_dir / target), inside, _within_any(target, read_only)))
    return sorted(binds, key=lambda bind: (len(PurePosixPath(bind.target).parts),
                                           bind.target))


def _within_any(path: str, folders: list[str]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in folders)


def plan_container(
    spec: JobSpec,
    *,
    job_uuid: str,
    image_digest: str,
    job_dir: Path,
    log_dir: Path,
    environment: dict[str, str],
    engine_url: str,
    user: str,
    keep_id: bool,
) -> ContainerRun:
    root = PurePosixPath(container_root(spec))
    working_dir = root if spec.cwd in ("", ".") else root / spec.cwd
    return ContainerRun(
        engine_url=engine_url, job_uuid=job_uuid, image=image_digest,
        image_name=spec.image or image_digest,
        command=list(spec.command), environment=dict(environment),
        working_dir=str(working_dir), binds=plan_binds(spec, job_dir),
        network=spec.network, user=user, keep_id=keep_id,
        attach_stdin=spec.stdin is not None,
        failure_file=str(log_dir / "container-failure.txt"),
    )


def create_arguments(run: ContainerRun) -> dict[str, Any]:
    """Keyword arguments of the SDK's low-level ``APIClient.create_container`` except
    ``host_config``, whose arguments ``host_config_arguments`` gives."""
    return {
        "image": run.image,
        "command": run.command,
        "name": run.name,
        "environment": run.environment,
        "working_dir": run.working_dir,
        "user": run.user,
        "labels": {LABEL: run.job_uuid},
        # Implies StdinOnce: the command sees end of file when the supervisor detaches.
        "stdin_open": run.attach_stdin,
    }


def host_config_arguments(run: ContainerRun) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_host_config``."""
    from docker.types import Mount

    arguments: dict[str, Any] = {
        "mounts": [Mount(bind.target, bind.source, type="bind", read_only=bind.read_only)
                   for bind in run.binds],
        "network_mode": "bridge" if run.network else "none",
    }
    if run.keep_id:
        arguments["userns_mode"] = "keep-id"
    return arguments
