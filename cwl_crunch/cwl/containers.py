"""Which image a CommandLineTool runs in, and where its fixed container paths go.

The runner only names the image (building or loading it first when the tool says so);
the cluster resolves the name to its content digest when the step is submitted.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from cwltool.errors import UnsupportedRequirement, WorkflowException

from cwl_crunch.containers import Engine, Images
from cwl_crunch.containers.engine import HOW_TO_GET_ONE
from cwl_crunch.cwl.layout import JOB_ROOT
from cwl_crunch.errors import ContainerError

logger = logging.getLogger("cwl_crunch.cwl")

ABSOLUTE_DIR = "abs"
"""Job-dir folder for files a tool wants at absolute paths outside the job root."""


class RunnerContainers:
    """The run's container settings: ``engine_url`` None means there is no engine."""

    def __init__(self, engine_url: str | None, *, turned_off: bool = False,
                 remote: bool = False, pins: Mapping[str, str] | None = None) -> None:
        """``turned_off``: no engine because the config says ``none``, not for want of one;
        ``remote``: the steps run on a server's cluster, whose engine pulls images (this
        host needs an engine only to build or load one); ``pins``: image names to run as
        these digests (``--pin-image``: what a peer's run was sent with)."""
        self.engine_url = engine_url
        self._pins = dict(pins or {})
        self._remote = remote and not turned_off
        self._why_none = "containers are turned off (container_engine = none)" if turned_off \
            else "no container engine found"
        self._images = Images(Engine(engine_url)) if engine_url else None
        self._references: dict[str, str] = {}
        self._lock = threading.Lock()
        self._warned = False

    def image_for(self, requirement: Mapping[str, Any], required: bool,
                  tool_id: str) -> str | None:
        """The image to run in; None: run on the host (a hint and no engine)."""
        named = named_image(requirement)
        if named is not None and named in self._pins:
            return self._pins[named]
        if self._images is None:
            name = requirement.get("dockerPull") or requirement.get("dockerImageId") or ""
            if self._remote and named is not None:
                return named
            if required:
                raise WorkflowException(
                    f"this tool requires a container (DockerRequirement {name}) but "
                    f"{self._why_none}: {HOW_TO_GET_ONE}")
            self._warn_once(name)
            return None
        key = json.dumps(dict(requirement), sort_keys=True, default=str)
        with self._lock:
            if key not in self._references:
                self._references[key] = self._reference(requirement, tool_id)
            return self._references[key]

    def _warn_once(self, name: str) -> None:
        with self._lock:
            if not self._warned:
                logger.warning("%s: running tools that only hint at a container (%s) on "
                               "this host", self._why_none, name)
                self._warned = True

    def _reference(self, requirement: Mapping[str, Any], tool_id: str) -> str:
        assert self._images is not None
        name = requirement.get("dockerImageId") or requirement.get("dockerPull")
        try:
            if "dockerFile" in requirement:
                return self._images.build(str(requirement["dockerFile"]))
            if "dockerLoad" in requirement:
                archive = _local_archive(str(requirement["dockerLoad"]), tool_id)
                return self._images.load(archive, str(name) if name else None)
        except ContainerError as error:
            raise WorkflowException(str(error)) from None
        if not name:
            raise WorkflowException("DockerRequirement names no image (dockerPull, "
                                    "dockerImageId, dockerFile or dockerLoad)")
        return str(name)


def _local_archive(location: str, tool_id: str) -> Path:
    """``dockerLoad``: a path (relative to the tool's file) or a URL."""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme in ("http", "https"):
        target = Path.home() / ".cache" / "cwl-crunch" / "images" / \
            urllib.parse.quote(location, safe="")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            urllib.request.urlretrieve(location, partial)
            partial.rename(target)
        return target
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    tool_path = urllib.parse.urlparse(tool_id)
    base = Path(urllib.parse.unquote(tool_path.path)).parent if tool_path.scheme == "file" \
        else Path.cwd()
    return base / location


class JobPaths:
    """Absolute paths the command sees, as paths in its job dir.

    Paths under the job root are in the job dir already. In a container, other absolute
    paths (``dockerOutputDirectory``, an InitialWorkDir entry named ``/data/x``) become
    binds: shown there, kept in the job dir. On the host they cannot be honoured.
    """

    def __init__(self, in_container: bool, binds: Mapping[str, str] | None = None) -> None:
        self.in_container = in_container
        self.binds: dict[str, str] = dict(binds or {})

    def job_path(self, absolute: str) -> str:
        if absolute.startswith(JOB_ROOT + "/"):
            return absolute[len(JOB_ROOT) + 1:]
        if not self.in_container or absolute == JOB_ROOT or not absolute.startswith("/"):
            raise UnsupportedRequirement(
                f"{absolute}: outside a container cwl-crunch stages files only inside "
                f"the job directory ({JOB_ROOT})")
        path = PurePosixPath(absolute)
        for inside, target in self.binds.items():
            if path.is_relative_to(inside) and path != PurePosixPath(inside):
                return str(PurePosixPath(target) / path.relative_to(inside))
        relative = str(PurePosixPath(ABSOLUTE_DIR) / path.relative_to("/"))
        self.binds[absolute] = relative
        return relative


def named_image(requirement: Mapping[str, Any]) -> str | None:
    """The image a DockerRequirement names to pull or find (``dockerPull``,
    ``dockerImageId``); None if it names none or the image is made where the tool runs
    (``dockerFile``, ``dockerLoad``)."""
    name = requirement.get("dockerPull") or requirement.get("dockerImageId")
    if not isinstance(name, str) or not name or {"dockerFile", "dockerLoad"} & set(requirement):
        return None
    return name


def image_names(process: Any) -> list[str]:
    """The image names of every DockerRequirement (requirement or hint) of a packed
    process: those a cluster can offer a peer by digest."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            if node.get("class") == "DockerRequirement" and (name := named_image(node)):
                names.add(name)
            for value in node.values():
                visit(value)

    visit(process)
    return sorted(names)
