"""``RunInSingleContainer``: a subworkflow run as one job instead of one job per step.

The job runs ``cwl-crunch-runner --in-one-job`` over the packed subworkflow: cwltool's
own executor, every step a process inside that one job (no records of its own). Its
inputs are the collections the input object names, mounted at ``inputs/<n>``, and the
object names them there; its output collection is its ``--outdir``. It asks for the
largest of its steps' ``coresMin`` and ``ramMin`` and the sum of their ``outdirMin``
(literal values; an expression counts as cwltool's default).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.process import Process
from cwltool.utils import visit_class

from cwl_crunch.cwl.hints import SINGLE_JOB_HINTS, in_force
from cwl_crunch.cwl.job import deliver
from cwl_crunch.cwl.layout import KEEP_PREFIX
from cwl_crunch.cwl.path_mapper import Uploads
from cwl_crunch.cwl.remote import packed_process, stored_inputs, yaml_text
from cwl_crunch.errors import CrunchError
from cwl_crunch.model import CollectionMount, JobSpec
from cwl_crunch.model.runs import RUN_FOLDER_FILES, RUN_ROOT, relocated

if TYPE_CHECKING:
    from cwl_crunch.cwl.steps import StepRunner

logger = logging.getLogger("cwl_crunch.cwl")

DEFAULT_CORES, DEFAULT_RAM_MIB = 1.0, 256


def wants_single_job(process: Process) -> bool:
    return in_force(process, SINGLE_JOB_HINTS) is not None


def resources_of(process: Process) -> tuple[float, int, int]:
    """(cores, RAM in MiB, outdir MiB): the max of the steps' cores and RAM, the sum of
    their outdir sizes, from the literal values of their ResourceRequirements."""
    cores, ram, outdir = DEFAULT_CORES, DEFAULT_RAM_MIB, 0
    for request in _resource_requests(process):
        cores = max(cores, _number(request.get("coresMin"), DEFAULT_CORES))
        ram = max(ram, int(_number(request.get("ramMin"), DEFAULT_RAM_MIB)))
        outdir += int(_number(request.get("outdirMin"), 0))
    return cores, ram, outdir


def _resource_requests(process: Process) -> Iterator[Mapping[str, Any]]:
    """The ResourceRequirement in force for each tool of the workflow (a step's, its
    workflow's or its own: cwltool hands the in-force ones to each process)."""
    steps = getattr(process, "steps", None)
    if steps is None:
        requirement, _ = process.get_requirement("ResourceRequirement")
        if requirement is not None:
            yield requirement
        return
    for step in steps:
        yield from _resource_requests(step.embedded_tool)


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default


class SingleJob:
    """A job for cwltool's executor: the whole subworkflow as one cluster job."""

    def __init__(self, steps: StepRunner, process: Process, job_order: Any, name: str,
                 output_callback: Callable[[Any, str], None]) -> None:
        self._steps, self._process, self._job_order = steps, process, job_order
        self.name, self._output_callback = name, output_callback
        self.outdir = None

    def run(self, runtimeContext: RuntimeContext,
            tmpdir_lock: threading.Lock | None = None) -> None:
        outputs: Any = {}
        status = "permanentFail"
        try:
            outputs, status = self._run()
        except (WorkflowException, CrunchError) as error:
            logger.error("[step %s] in one job: %s", self.name, error)
        deliver(runtimeContext, self._output_callback, outputs, status)

    def _run(self) -> tuple[Any, str]:
        steps = self._steps
        inputs = stored_inputs(self._job_order, Uploads(lambda: steps.client))
        mounts, inputs = _mounted(inputs)
        with tempfile.TemporaryDirectory(prefix="cwl-crunch-single-") as scratch:
            folder = Path(scratch)
            workflow, inputs_file = RUN_FOLDER_FILES
            (folder / workflow).write_text(yaml_text(packed_process(self._process)))
            (folder / inputs_file).write_text(yaml_text(inputs))
            run_pdh = steps.client.put_paths([folder / workflow, folder / inputs_file])
        cores, ram, _ = resources_of(self._process)
        flags = [] if steps.containers is not None else ["--no-container"]
        spec = JobSpec(
            ("cwl-crunch-runner", "--in-one-job", "--quiet", *flags, "--outdir", "out",
             f"in/{workflow}", f"in/{inputs_file}"),
            name=self.name, mounts={"in": CollectionMount(run_pdh), **mounts}, root=RUN_ROOT,
            stdout="cwl.output.json", cores=cores, ram=ram << 20, reuse=steps.reuse)
        record = steps.run_step(self.name, spec)
        if not record.succeeded or record.output_pdh is None or record.log_pdh is None:
            raise WorkflowException(f"job {record.uuid} ended {record.state} "
                                    f"({record.failure_reason or record.exit_code}; its log: "
                                    f"cwl-crunch jobs logs {record.uuid})")
        said = b"".join(steps.client.read_file(record.log_pdh, "stdout.txt"))
        return relocated(json.loads(said), f"{KEEP_PREFIX}{record.output_pdh}", None), \
            "success"


def _mounted(inputs: Any) -> tuple[dict[str, CollectionMount], Any]:
    """Mounts of the collections the input object names, and the object naming them at
    their mount points (``file://`` paths inside the job)."""
    mounts: dict[str, CollectionMount] = {}
    places: dict[str, str] = {}

    def move(obj: dict[str, Any]) -> None:
        location = str(obj.get("location", ""))
        if not location.startswith(KEEP_PREFIX):
            return
        pdh, _, path = location[len(KEEP_PREFIX):].partition("/")
        if pdh not in places:
            places[pdh] = f"inputs/{len(places)}"
            mounts[places[pdh]] = CollectionMount(pdh)
        where = f"{RUN_ROOT}/{places[pdh]}/{urllib.parse.unquote(path)}".rstrip("/")
        obj["location"] = Path(where).as_uri()

    visit_class(inputs, ("File", "Directory"), move)
    return mounts, inputs
