"""Checks on a job spec that need no cluster: shapes, paths, resource signs, label types."""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from cwl_crunch.errors import SubmitError
from cwl_crunch.model import CollectionMount, JobSpec


def check_job_path(what: str, path: str) -> str:
    """A path inside the job dir: relative, normalized, never climbing out with '..'."""
    if not path:
        raise SubmitError(f"{what}: empty path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise SubmitError(
            f"{what}: {path!r} must be a path inside the job directory "
            "(relative, without '..')"
        )
    return str(pure)


def check_spec(spec: JobSpec) -> None:
    if not spec.command or not all(isinstance(arg, str) for arg in spec.command):
        raise SubmitError("command must be a non-empty list of strings")
    if not spec.command[0]:
        raise SubmitError("command: the executable name is empty")
    _check_resources(spec)
    check_job_path("output_path", spec.output_path)
    if spec.cwd != ".":
        check_job_path("cwd", spec.cwd)
    if spec.root is not None:
        check_absolute_path("root", spec.root, "where the command sees its job directory")
    _check_container_fields(spec)
    for what in ("stdin", "stdout", "stderr"):
        value = getattr(spec, what)
        if value is not None:
            check_job_path(what, value)
    for target, mount in spec.mounts.items():
        check_job_path(f"mount {target!r}", target)
        if isinstance(mount, CollectionMount) and mount.path:
            check_job_path(f"mount {target!r}: path in collection", mount.path)
    for name, value in spec.environment.items():
        if not isinstance(name, str) or not isinstance(value, str) or not name or "=" in name:
            raise SubmitError(f"environment: bad variable {name!r}={value!r}")
    _check_labels(spec)


def check_absolute_path(what: str, path: str, meaning: str) -> None:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or pure == PurePosixPath("/") \
            or str(pure) != path:
        raise SubmitError(f"{what}: {path!r} must be a normalized absolute path below / "
                          f"({meaning})")


def _check_container_fields(spec: JobSpec) -> None:
    if spec.image is not None and (not isinstance(spec.image, str) or not spec.image
                                   or spec.image != spec.image.strip()):
        raise SubmitError(f"image: {spec.image!r} is not an image name or id")
    if spec.image is None and (spec.binds or spec.network):
        raise SubmitError("binds and network apply to containers only: set an image")
    if not isinstance(spec.network, bool):
        raise SubmitError(f"network must be true or false, not {spec.network!r}")
    for inside, target in spec.binds.items():
        check_absolute_path(f"bind {inside!r}", inside, "a path in the container")
        check_job_path(f"bind {inside!r}", target)


def _check_labels(spec: JobSpec) -> None:
    """Types only, as the API schema has them: any name, label or priority will do."""
    if not isinstance(spec.name, str):
        raise SubmitError(f"name must be text, not {spec.name!r}")
    for key, value in spec.properties.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SubmitError(f"properties: {key!r}={value!r}: both must be text")
    if isinstance(spec.priority, bool) or not isinstance(spec.priority, int):
        raise SubmitError(f"priority must be a whole number, not {spec.priority!r}")
    if not isinstance(spec.reuse, bool):
        raise SubmitError(f"reuse must be true or false, not {spec.reuse!r}")


def _check_resources(spec: JobSpec) -> None:
    if isinstance(spec.cores, bool) or not isinstance(spec.cores, int | float) \
            or not math.isfinite(spec.cores) or spec.cores <= 0:
        raise SubmitError(f"cores must be a positive number, not {spec.cores!r}")
    if isinstance(spec.ram, bool) or not isinstance(spec.ram, int) or spec.ram <= 0:
        raise SubmitError(f"ram must be a positive number of bytes, not {spec.ram!r}")
    if isinstance(spec.gpus, bool) or not isinstance(spec.gpus, int) or spec.gpus < 0:
        raise SubmitError(f"gpus must be a whole number >= 0, not {spec.gpus!r}")
    if spec.time_limit is not None and (
        isinstance(spec.time_limit, bool)
        or not isinstance(spec.time_limit, int | float) or not spec.time_limit > 0
    ):
        raise SubmitError(f"time_limit must be a positive number of seconds, not "
                          f"{spec.time_limit!r}")
