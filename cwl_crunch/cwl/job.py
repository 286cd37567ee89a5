"""One CommandLineTool invocation, run as a cluster job.

cwltool prepares everything (command line, environment, redirections, InitialWorkDir,
the input path map) against the fixed layout of ``layout.py``; this turns that into a
JobSpec whose mounts come from the path maps, submits it, waits for it, and collects the
outputs from its output collection with cwltool's own output bindings.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cwltool.errors import UnsupportedRequirement, WorkflowException
from cwltool.job import JobBase
from cwltool.pathmapper import MapperEnt, PathMapper

from cwl_crunch.cwl.containers import JobPaths
from cwl_crunch.cwl.fs_access import keep_location
from cwl_crunch.cwl.layout import JOB_ROOT, KEEP_PREFIX, OUTDIR, TMPDIR
from cwl_crunch.errors import CorruptBlock
from cwl_crunch.model import CollectionMount, JobRecord, JobSpec, LiteralMount, Mount
from cwl_crunch.store import split_reference

if TYPE_CHECKING:
    from cwltool.context import RuntimeContext

    from cwl_crunch.cwl.steps import StepRunner

logger = logging.getLogger("cwl_crunch.cwl")

PARTITION_REQUIREMENT = "http://arvados.org/cwl#PartitionRequirement"
"""Arvados' hint (``arv:PartitionRequirement: {partition: ...}``): where on SLURM."""
_READ_ONLY = {"File": False, "Directory": False, "WritableFile": True,
              "WritableDirectory": True}


def deliver(runtimeContext: RuntimeContext, output_callback: Callable[[Any, str], None],
            outputs: Any, status: str) -> None:
    """Hand a job's outputs to cwltool, under the workflow lock when there is one (the
    callback moves the workflow on)."""
    lock = runtimeContext.workflow_eval_lock
    if lock is None:
        output_callback(outputs, status)
    else:
        with lock:
            output_callback(outputs, status)


def mount_for(entry: MapperEnt) -> Mount:
    if entry.type in ("CreateFile", "CreateWritableFile"):
        return LiteralMount(entry.resolved, writable=entry.type == "CreateWritableFile")
    if entry.type not in _READ_ONLY or not entry.resolved.startswith(KEEP_PREFIX):
        raise UnsupportedRequirement(f"cannot stage {entry.resolved!r} ({entry.type})")
    pdh, path = split_reference(entry.resolved)
    return CollectionMount(pdh, urllib.parse.unquote(path), writable=_READ_ONLY[entry.type])


def mounts_of(paths: JobPaths, *mappers: PathMapper | None) -> dict[str, Mount]:
    mounts: dict[str, Mount] = {}
    for mapper in mappers:
        if mapper is None:
            continue
        for _, entry in mapper.items_exclude_children():
            # A literal directory is made by the mounts of its children (staged apart).
            literal_dir = entry.type in ("Directory", "WritableDirectory") and \
                entry.resolved.startswith("_:")
            if entry.staged and entry.type and not literal_dir:
                mounts[paths.job_path(entry.target)] = mount_for(entry)
    return mounts


def process_status(exit_code: int, job: JobBase) -> str:
    """cwltool's mapping of an exit code to a process status."""
    if exit_code in job.successCodes:
        return "success"
    if exit_code in job.temporaryFailCodes:
        return "temporaryFail"
    if exit_code in job.permanentFailCodes:
        return "permanentFail"
    return "success" if exit_code == 0 else "permanentFail"


class CrunchJob(JobBase):
    """Built by ``CrunchCommandLineTool.make_job_runner`` with the run's StepRunner."""

    def __init__(self, steps: StepRunner, tool_id: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._steps = steps
        self._tool_id = tool_id

    def _required_env(self) -> dict[str, str]:
        # No PATH here: the worker supplies its own, and it must not enter the reuse key.
        return {"HOME": OUTDIR, "TMPDIR": TMPDIR}

    def run(self, runtimeContext: RuntimeContext,
            tmpdir_lock: threading.Lock | None = None) -> None:
        outputs: Any = {}
        status = "permanentFail"
        try:
            spec = self._spec(runtimeContext)
            outputs, status = self._collected(spec, self._steps.run_step(self.name, spec))
        except UnsupportedRequirement:  # cwltool reports it (and exits 33)
            raise
        except WorkflowException as error:  # as cwltool's own jobs do: a message, no traceback
            logger.error("[step %s] %s", self.name, error)
        except Exception as error:
            logger.error("[step %s] %s", self.name, error, exc_info=runtimeContext.debug)
        if self.output_callback is not None:
            deliver(runtimeContext, self.output_callback, outputs, status)

    def _spec(self, runtimeContext: RuntimeContext) -> JobSpec:
        generatemapper = None
        if "listing" in self.generatefiles:
            generatemapper = self.make_path_mapper(
                self.generatefiles["listing"], self.builder.outdir, runtimeContext, False)
            self.generatemapper = generatemapper
        resources = self.builder.resources
        work_reuse, _ = self.get_requirement("WorkReuse")
        reuse = bool(work_reuse.get("enableReuse", True)) if work_reuse else True
        partition, _ = self.get_requirement(PARTITION_REQUIREMENT)
        image, paths = self._container(runtimeContext)
        mounts = mounts_of(paths, self.pathmapper, generatemapper)
        return JobSpec(
            command=tuple(str(arg) for arg in self.command_line),
            name=self.name,
            environment=dict(self.environment),
            mounts=mounts,
            output_path="out",
            cwd="out",
            root=JOB_ROOT,
            image=image,
            binds=paths.binds,
            network=bool(self.networkaccess) and image is not None,
            stdin=paths.job_path(self.stdin) if self.stdin else None,
            stdout=f"out/{self.stdout}" if self.stdout else None,
            stderr=f"out/{self.stderr}" if self.stderr else None,
            cores=max(float(resources.get("cores", 1) or 1), 0.01),
            ram=max(int(float(resources.get("ram", 256) or 256) * 2**20), 2**20),
            time_limit=float(self.timelimit) if self.timelimit else None,
            reuse=reuse and self._steps.reuse,
            properties=_partition_property(partition),
        )

    def _note_inplace_updates(self, output_pdh: str) -> None:
        """Writable inputs staged in the output dir now read as what the step left."""
        for mapper in (self.pathmapper, self.generatemapper):
            if mapper is None:
                continue
            for _, entry in mapper.items_exclude_children():
                if entry.type in ("WritableFile", "WritableDirectory") and \
                        entry.resolved.startswith(KEEP_PREFIX) and \
                        entry.target.startswith(OUTDIR + "/"):
                    new = keep_location(output_pdh, entry.target[len(OUTDIR) + 1:])
                    self._steps.updates.record(entry.resolved, new)

    def _container(self, runtimeContext: RuntimeContext) -> tuple[str | None, JobPaths]:
        """The image (None: on the host) and the job's paths seen from inside it."""
        containers = self._steps.containers
        requirement, required = self.get_requirement("DockerRequirement")
        if requirement is None and runtimeContext.default_container:
            requirement, required = {"dockerPull": runtimeContext.default_container}, True
        if requirement is None or containers is None:
            return None, JobPaths(in_container=False)
        image = containers.image_for(requirement, bool(required), self._tool_id)
        if image is None:
            return None, JobPaths(in_container=False)
        binds = {}
        output_dir = str(requirement.get("dockerOutputDirectory") or "").rstrip("/")
        if output_dir.startswith("/") and output_dir != OUTDIR:
            binds[output_dir] = "out"
        return image, JobPaths(in_container=True, binds=binds)

    def _collected(self, spec: JobSpec, record: JobRecord) -> tuple[Any, str]:
        """The step's outputs; a reused output found damaged while collected means running
        the step once more (the cluster no longer reuses that job, and the new output
        repairs the store)."""
        try:
            return self._outcome(record)
        except WorkflowException as error:
            damage = _store_damage(error)
            if damage is None or record.reused_job_uuid is None:
                raise
            logger.warning("[step %s] the output of job %s, reused, is damaged (%s): "
                           "running the step again", self.name, record.reused_job_uuid,
                           damage)
        return self._outcome(self._steps.run_step(self.name, spec))

    def _outcome(self, record: JobRecord) -> tuple[Any, str]:
        if not record.complete or record.output_pdh is None or record.exit_code is None:
            reason = record.failure_reason or record.state
            logger.error("[step %s] job %s %s (its log: cwl-crunch jobs logs %s)",
                         self.name, record.uuid, reason, record.uuid)
            return {}, "permanentFail"
        status = process_status(record.exit_code, self)
        if status == "success" and self.inplace_update:
            self._note_inplace_updates(record.output_pdh)
        if status != "success":
            logger.warning("[step %s] job %s exited with status %d (its log: cwl-crunch "
                           "jobs logs %s)", self.name, record.uuid, record.exit_code,
                           record.uuid)
        outputs = self.collect_outputs(f"{KEEP_PREFIX}{record.output_pdh}", record.exit_code)
        return outputs, status


def _store_damage(error: BaseException) -> CorruptBlock | None:
    """The CorruptBlock (or CorruptManifest) behind a cwltool error, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, CorruptBlock):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _partition_property(requirement: Mapping[str, Any] | None) -> dict[str, str]:
    """Arvados' partition hint, which the SLURM dispatcher honours: one name or a list."""
    if not requirement or not requirement.get("partition"):
        return {}
    names = requirement["partition"]
    names = [names] if isinstance(names, str) else list(names)
    return {"partition": ",".join(str(name) for name in names)}
