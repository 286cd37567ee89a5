"""Running the workflow: cwltool's multithreaded executor, outputs moved to --outdir.

Each step thread blocks on its cluster job, so independent steps run at once, as far as
the dispatcher allows. Outputs stay ``keep:`` locations through the workflow; only the
final ones are copied out of the store, by cwltool's own relocation.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.executors import MultithreadedJobExecutor, SingleJobExecutor
from cwltool.pathmapper import PathMapper
from cwltool.process import Process, relocateOutputs

from cwl_crunch.cwl.fs_access import MaterializingFsAccess
from cwl_crunch.cwl.resources import MIB
from cwl_crunch.cwl.steps import StepRunner

_CWLTOOL_LOGGER = logging.getLogger("cwltool")


REMOTE_STEPS_IN_FLIGHT = 100
"""Steps submitted to a server and not yet done, at most (one thread each)."""


class CrunchExecutor(MultithreadedJobExecutor):
    """cwltool's executor admits a step only if it fits this host's cores and RAM, and
    runs as many threads as the host has cores. When the steps run on a server's cluster,
    which packs them itself, that limit only kept steps waiting here (2 in flight on 2
    cores, each a round trip to the server): ``steps_in_flight`` replaces it with a cap
    on steps in flight. Embedded, the limit is the cluster's one node (the local
    dispatcher's cores and RAM): the steps run there, and more waiting threads only slow
    it down. The resources a step is given (``runtime.cores``, so its reuse key) are
    judged against the cluster's largest node (``StepRunner.select_resources``)."""

    def __init__(self, steps: StepRunner, before_run: Callable[[Process, Any], None],
                 steps_in_flight: int | None = None) -> None:
        """``before_run`` is called once a run really starts (not for --validate), with
        the process and its input object."""
        super().__init__()
        self._steps = steps
        self._before_run = before_run
        self._steps_in_flight = steps_in_flight
        if steps_in_flight is not None:
            self.max_cores, self.max_ram = float(steps_in_flight), 1 << 40

    def run_jobs(
        self,
        process: Process,
        job_order_object: Any,
        logger: logging.Logger,
        runtime_context: RuntimeContext,
    ) -> None:
        if runtime_context.validate_only:
            # cwltool's single-job executor validates the inputs and stops before running
            # anything (the multithreaded one would run the workflow).
            SingleJobExecutor.run_jobs(self, process, job_order_object, logger,  # type: ignore[arg-type]
                                       runtime_context)
            return
        if self._steps_in_flight is None:  # embedded: a step fitted to the node is admitted
            node = self._steps.largest_node()
            self.max_cores, self.max_ram = node.cores, node.ram // MIB
        super().run_jobs(process, job_order_object, logger, runtime_context)

    def execute(
        self,
        process: Process,
        job_order_object: Any,
        runtime_context: RuntimeContext,
        logger: logging.Logger = _CWLTOOL_LOGGER,
    ) -> tuple[Any, str]:
        final_outdir = runtime_context.outdir
        if not runtime_context.validate_only:
            self._before_run(process, job_order_object)
        context = runtime_context.copy()
        context.outdir = None  # relocation is ours (the outputs are keep: locations)
        output, status = super().execute(process, job_order_object, context, logger)
        if output is not None and not context.validate_only:
            output = self._steps.localized("the run's outputs", output)
        if output is None or final_outdir is None or context.validate_only:
            return output, status
        # Made even for outputs without files: a runner job's output collection is this
        # directory. And made again: inside a runner job, cwltool's clean-up of the steps'
        # outdirs (layout.OUTDIR, in the run's own job dir) has just removed it.
        Path(final_outdir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cwl-crunch-out-",
                                         dir=str(Path(final_outdir).resolve().parent)) as stage:
            fs_access = MaterializingFsAccess("", client=self._steps.client,
                                              staging_dir=Path(stage),
                                              updates=self._steps.updates)
            fs_access.prefetch(_locations(output))
            output = relocateOutputs(
                output, str(Path(final_outdir).resolve()), {stage}, "move", fs_access,
                bool(runtime_context.compute_checksum), path_mapper=PathMapper)
        return output, status


def _locations(value: Any) -> Iterator[str]:
    """The locations of the Files and Directories in an output object (secondary files
    and listings too)."""
    if isinstance(value, dict):
        if value.get("class") in ("File", "Directory") and isinstance(value.get("location"),
                                                                       str):
            yield value["location"]
        for item in value.values():
            yield from _locations(item)
    elif isinstance(value, list):
        for item in value:
            yield from _locations(item)
