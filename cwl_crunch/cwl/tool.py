"""cwltool process classes whose CommandLineTool invocations become cluster jobs."""

from __future__ import annotations

import functools
from typing import Any

from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import UnsupportedRequirement, WorkflowException
from cwltool.process import Process, shortname
from cwltool.workflow import Workflow, WorkflowStep, default_make_tool

from cwl_crunch.cwl.hints import cluster_hint
from cwl_crunch.cwl.job import CrunchJob
from cwl_crunch.cwl.layout import OUTDIR, STAGEDIR, TMPDIR
from cwl_crunch.cwl.remote import RemoteRun
from cwl_crunch.cwl.single_job import SingleJob, wants_single_job
from cwl_crunch.cwl.steps import StepRunner
from cwl_crunch.errors import CrunchError


class CrunchCommandLineTool(CommandLineTool):
    def __init__(self, steps: StepRunner, toolpath_object: Any,
                 loadingContext: LoadingContext) -> None:
        super().__init__(toolpath_object, loadingContext)
        self._steps = steps

    def job(self, job_order: Any, output_callbacks: Any, runtimeContext: RuntimeContext) -> Any:
        remote = remote_run(self._steps, self, job_order, output_callbacks, runtimeContext)
        if remote is not None:
            yield remote
            return
        yield from self._local_job(job_order, output_callbacks, runtimeContext)

    def _local_job(self, job_order: Any, output_callbacks: Any,
                   runtimeContext: RuntimeContext) -> Any:
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
        yield from super().job(job_order, output_callbacks, context)

    def make_job_runner(self, runtimeContext: RuntimeContext) -> Any:
        _, docker_required = self.get_requirement("DockerRequirement")
        if docker_required and self._steps.containers is None:
            raise UnsupportedRequirement("--no-container, but this CommandLineTool has "
                                         "DockerRequirement under 'requirements'")
        return functools.partial(CrunchJob, self._steps, str(self.tool.get("id", "")))


STEP_INPUTS = "crunch_step_inputs"
"""The RuntimeContext attribute holding every input of the step being started, those
its process does not declare too (cwltool passes the process only its own)."""


class CrunchWorkflowStep(WorkflowStep):
    def job(self, job_order: Any, output_callbacks: Any, runtimeContext: RuntimeContext) -> Any:
        context = runtimeContext.copy()
        setattr(context, STEP_INPUTS, {shortname(str(parameter["id"])):
                                       job_order.get(parameter["id"])
                                       for parameter in self.tool["inputs"]})
        yield from super().job(job_order, output_callbacks, context)


class CrunchWorkflow(Workflow):
    """A workflow that runs on another cluster when its RunOnCluster says so."""

    def __init__(self, steps: StepRunner, toolpath_object: Any,
                 loadingContext: LoadingContext) -> None:
        self._steps = steps
        super().__init__(toolpath_object, loadingContext)

    def make_workflow_step(self, toolpath_object: Any, pos: int,
                           loadingContext: LoadingContext,
                           parentworkflowProv: Any = None) -> WorkflowStep:
        return CrunchWorkflowStep(toolpath_object, pos, loadingContext, parentworkflowProv)

    def job(self, job_order: Any, output_callbacks: Any, runtimeContext: RuntimeContext) -> Any:
        remote = remote_run(self._steps, self, job_order, output_callbacks, runtimeContext)
        if remote is not None:
            yield remote
            return
        if wants_single_job(self):
            builder = self._init_job(job_order, runtimeContext)
            yield SingleJob(self._steps, self, builder.job, _name(self, runtimeContext),
                            output_callbacks)
            return
        yield from super().job(job_order, output_callbacks, runtimeContext)


def remote_run(steps: StepRunner, process: Process, job_order: Any, output_callbacks: Any,
               runtimeContext: RuntimeContext) -> RemoteRun | None:
    """The one job that runs ``process`` on a peer, if its hint sends it to one."""
    peer = remote_peer(steps, process, job_order, runtimeContext)
    if peer is None:
        return None
    return RemoteRun(steps, process, peer[1], peer[0], _name(process, runtimeContext),
                     output_callbacks)


def remote_peer(steps: StepRunner, process: Process, job_order: Any,
                runtimeContext: RuntimeContext) -> tuple[str, Any] | None:
    """(the peer, the checked input object) when ``process`` runs on a peer; None here.
    The hint is evaluated against the inputs as given, with those a step passes that
    the process does not declare (as Arvados reads ``cluster_id: $(inputs.x)``)."""
    if cluster_hint(process) is None and steps.steps_on is None:
        site = steps.resident_site(process, job_order)  # its data keeps it there
        if site is None:
            return None
        try:
            return site, process._init_job(job_order, runtimeContext).job
        except (WorkflowException, CrunchError) as error:
            raise WorkflowException(
                f"{_name(process, runtimeContext)} runs on cluster {site}, where inputs "
                f"of it are resident, and its inputs cannot be read here: {error}") from None
    builder = process._init_job(job_order, runtimeContext)
    checked = builder.job
    builder.job = {**(getattr(runtimeContext, STEP_INPUTS, None) or {}), **checked}
    peer = steps.cluster_for(process, builder.job, builder.do_eval)
    return None if peer is None else (peer, checked)


def _name(process: Process, runtimeContext: RuntimeContext) -> str:
    return runtimeContext.name or shortname(str(process.tool.get("id", "job")))


def make_tool_factory(steps: StepRunner) -> Any:
    """A ``LoadingContext.construct_tool_object`` that builds our CommandLineTool."""

    def make_tool(toolpath_object: Any, loadingContext: LoadingContext) -> Process:
        if isinstance(toolpath_object, dict) and toolpath_object.get("class") == \
                "CommandLineTool":
            return CrunchCommandLineTool(steps, toolpath_object, loadingContext)
        if isinstance(toolpath_object, dict) and toolpath_object.get("class") == "Workflow":
            return CrunchWorkflow(steps, toolpath_object, loadingContext)
        return default_make_tool(toolpath_object, loadingContext)

    return make_tool

