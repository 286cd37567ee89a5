"""A workflow run as a job: the one shape of a runner job's spec.

``cwl-crunch-runner --submit`` makes one for a person, and a cluster makes one for a
peer that sends it a run (``POST /api/v1/federation/runs``): a peer names only the
collections (packed workflow and inputs, as PDHs) and a few flags, never a command, so
what a peer's token can start is a runner job and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from cwl_crunch.model.jobs import CollectionMount, JobSpec

RUN_ROOT = "/tmp/.cwl-crunch/job"
"""Where a CWL job (a runner's or a step's) sees its job directory (``JobSpec.root``):
part of every reuse key, so one constant for every cluster."""
RUNNER_CORES = 0.25
RUNNER_RAM = 1 << 30
RUN_FOLDER_FILES = ("workflow.cwl", "inputs.json")
"""What the run's collection holds: the packed workflow and its input object."""


PIN_IMAGE = "--pin-image"
"""The runner's option that runs a DockerRequirement image name as one image digest."""


def runner_spec(run_pdh: str, input_pdhs: Iterable[str], *, name: str, reuse: bool = True,
                use_container: bool = True,
                images: Mapping[str, str] | None = None) -> JobSpec:
    """The runner job of collection ``run_pdh`` (``RUN_FOLDER_FILES``); every collection
    the inputs name is mounted too, so that the run's token may read them. ``images``:
    image names pinned to digests (those a peer sent the run with)."""
    flags = [flag for flag, wanted in (("--disable-reuse", not reuse),
                                       ("--no-container", not use_container)) if wanted]
    for image, digest in sorted((images or {}).items()):
        flags += [PIN_IMAGE, f"{image}={digest}"]
    given = {f"inputs/{index}": CollectionMount(pdh)
             for index, pdh in enumerate(sorted(set(input_pdhs)))}
    workflow, inputs = RUN_FOLDER_FILES
    return JobSpec(
        command=("cwl-crunch-runner", "--quiet", *flags, "--outdir", "out",
                 f"in/{workflow}", f"in/{inputs}"),
        name=name, mounts={"in": CollectionMount(run_pdh), **given},
        root=RUN_ROOT, stdout="cwl.output.json", cores=RUNNER_CORES, ram=RUNNER_RAM,
        reuse=reuse)


def is_made_runner(command: Iterable[str], peer_id: str | None,
                   parent_uuid: str | None) -> bool:
    """Whether a job is a runner job as a cluster makes one (``runner_spec``): for a
    peer (``peer_id``), or for a person (no parent). A step that names the runner as
    its command is not one."""
    return list(command)[:2] == ["cwl-crunch-runner", "--quiet"] and (
        peer_id is not None or parent_uuid is None)


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """A run to hand to a peer: references only (the peer pulls what it lacks)."""

    run_pdh: str
    """The collection of ``RUN_FOLDER_FILES``."""
    input_pdhs: tuple[str, ...] = ()
    """Every collection the inputs name."""
    name: str = ""
    reuse: bool = True
    use_container: bool = True
    made_by: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Those of ``input_pdhs`` that the peer holds and the sender does not: each with
    the job there that made it (the output of an earlier step run there)."""

    images: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The container images its processes name, each with its digest on the sender
    ("": the sender does not know it; the sending cluster fills in what its engine
    has): the peer fetches those its engine lacks from the sender, by digest."""

    def as_dict(self) -> dict[str, Any]:
        return {"run_pdh": self.run_pdh, "input_pdhs": list(self.input_pdhs),
                "name": self.name, "reuse": self.reuse, "use_container": self.use_container,
                "made_by": dict(self.made_by), "images": dict(self.images)}


def pinned_images(spec: JobSpec) -> dict[str, str]:
    """The image names a runner job's command pins to digests (see runner_spec)."""
    command = spec.command
    return dict(command[index + 1].rsplit("=", 1) for index in range(len(command) - 1)
                if command[index] == PIN_IMAGE and "=" in command[index + 1])


PULL_FAILED = "could not pull its inputs"
"""How the failure reason of a peer's run begins when its inputs could not be pulled:
the mounts of no such run count as that peer's to read (records.access)."""

RUN_OUTDIR = f"file://{RUN_ROOT}/out"
"""Where a runner job's output object says its files are: its own ``--outdir``."""


def relocated(value: Any, location: str, path: str | None) -> Any:
    """A run's output object (its ``cwl.output.json``) with the files of its outdir
    moved to ``location`` (a URI: ``file:///...`` or ``keep:<pdh>``) and their paths to
    ``path`` (None: paths dropped, as for a keep: location)."""
    if isinstance(value, list):
        return [relocated(item, location, path) for item in value]
    if not isinstance(value, dict):
        return value
    moved = {key: relocated(item, location, path) for key, item in value.items()}
    text = moved.get("location")
    if isinstance(text, str) and text.startswith(RUN_OUTDIR):
        moved["location"] = location + text[len(RUN_OUTDIR):]
    text = moved.get("path")
    outdir = RUN_OUTDIR[len("file://"):]
    if isinstance(text, str) and text.startswith(outdir):
        if path is None:
            del moved["path"]
        else:
            moved["path"] = path + text[len(outdir):]
    return moved
