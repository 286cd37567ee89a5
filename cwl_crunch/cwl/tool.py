"""cwltool process classes whose CommandLineTool invocations become cluster jobs."""

from __future__ import annotations

import functools
from typing import Any

from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import UnsupportedRequirement
from cwltool.process import Process, shortname
from cwltool.workflow import default_make_tool

from cwl_crunch.cwl.job import CrunchJob
from cwl_crunch.cwl.layout import OUTDIR, STAGEDIR, TMPDIR
from cwl_crunch.cwl.steps import StepRunner


class CrunchCommandLineTool(CommandLineTool):
    def __init__(self, steps: StepRunner, toolpath_object: Any,
                 loadingContext: LoadingContext) -> None:
        super().__init__(toolpath_object, loadingContext)
        self._steps = steps

    def job(self, job_order: Any, output_callbacks: Any, runtimeContext: RuntimeContext) -> Any:
        # The fixed layout every step job sees (JobSpec.root): same paths, same commands.
        context = runtimeContext.copy()
        context.outdir, context.tmpdir, context.stagedir = OUTDIR, TMPDIR, STAGEDIR
        context.use_container = False
        context.cachedir = None
        # The step's resources are judged against the cluster's nodes, not this host.
        _, required = self.get_requirement("ResourceRequirement")
        step = runtimeContext.name or shortname(str(self.tool.get("id", "job")))
        context.select_resources = functools.partial(
            self._steps.select_resources, required=bool(required), step=step)
        return super().job(job_order, output_callbacks, context)

    def make_job_runner(self, runtimeContext: RuntimeContext) -> Any:
        _, docker_required = self.get_requirement("DockerRequirement")
        if docker_required and self._steps.containers is None:
            raise UnsupportedRequirement("--no-container, but this CommandLineTool has "
                                         "DockerRequirement under 'requirements'")
        return functools.partial(CrunchJob, self._steps, str(self.tool.get("id", "")))


def make_tool_factory(steps: StepRunner) -> Any:
    """A ``LoadingContext.construct_tool_object`` that builds our CommandLineTool."""

    def make_tool(toolpath_object: Any, loadingContext: LoadingContext) -> Process:
        if isinstance(toolpath_object, dict) and toolpath_object.get("class") == \
                "CommandLineTool":
            return CrunchCommandLineTool(steps, toolpath_object, loadingContext)
        return default_make_tool(toolpath_object, loadingContext)

    return make_tool

