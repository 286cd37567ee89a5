"""``cwl-crunch-runner workflow.cwl inputs.yml``: cwltool's command line, steps as jobs.

The run is itself a job: the runner records itself as one (or, started as a job, it is
that job) and submits every CommandLineTool invocation with that job's token, so the
steps are its children in the process tree.
"""

from __future__ import annotations

import argparse
import functools
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cwltool.main
from cwltool.argparser import arg_parser
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.errors import WorkflowException
from schema_salad.exceptions import ValidationException

from cwl_crunch.cli.submit_run import submit_run
from cwl_crunch.client import ClusterClient, JobOutcome, JobSpec, open_client
from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import Config, load_config
from cwl_crunch.containers import find_engine, is_digest
from cwl_crunch.containers.engine import NO_ENGINE
from cwl_crunch.cwl.containers import RunnerContainers
from cwl_crunch.cwl.executor import REMOTE_STEPS_IN_FLIGHT, CrunchExecutor
from cwl_crunch.cwl.fs_access import CrunchFsAccess
from cwl_crunch.cwl.hints import use_extensions
from cwl_crunch.cwl.layout import referenced_pdhs
from cwl_crunch.cwl.path_mapper import CrunchPathMapper, Uploads
from cwl_crunch.cwl.remote import Federation
from cwl_crunch.cwl.step_names import StepNames
from cwl_crunch.cwl.steps import Progress, StepRunner
from cwl_crunch.cwl.tool import make_tool_factory
from cwl_crunch.errors import ConfigError, CrunchError
from cwl_crunch.federation.links import PeerLinks
from cwl_crunch.model import CollectionMount, EndReason, JobState
from cwl_crunch.model.runs import PIN_IMAGE
from cwl_crunch.server.job_api import JobApi
from cwl_crunch.worker.processes import this_worker


def build_parser() -> argparse.ArgumentParser:
    parser = arg_parser()
    parser.prog = "cwl-crunch-runner"
    parser.description = "Run a CWL workflow; every step becomes a cwl-crunch job."
    parser.add_argument("--disable-reuse", action="store_true",
                        help="run every step even if identical work already ran")
    parser.add_argument("--container-engine", metavar="URL",
                        help="Docker Engine API of Docker or Podman, e.g. "
                             "unix:///run/podman/podman.sock (default: the config's "
                             "container_engine, DOCKER_HOST, else the first socket found)")
    parser.add_argument("--cluster", metavar="URL",
                        help="use the cwl-crunch server at URL (token: CWL_CRUNCH_API_TOKEN)")
    parser.add_argument("--submit", action="store_true",
                        help="with --cluster: run the runner itself as a job on the cluster")
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="with --submit: wait for the run and fetch its outputs "
                             "(default); --no-wait prints the run's UUID")
    parser.add_argument("--runner-cluster", metavar="CLUSTER_ID",
                        help="with --submit: run the runner on that peer of the cluster, "
                             "handed there by the cluster (as Arvados' "
                             "--submit-runner-cluster)")
    parser.add_argument("--in-one-job", action="store_true",
                        help="run every step here, as cwltool does, recording nothing: "
                             "what a RunInSingleContainer subworkflow's one job runs")
    parser.add_argument("--steps-on-cluster", metavar="CLUSTER_ID",
                        help="run every CommandLineTool on that peer of the cluster, as if "
                             "each had RunOnCluster (for testing federation)")
    parser.add_argument(PIN_IMAGE, metavar="NAME=DIGEST", action="append", default=[],
                        type=_pinned_image,
                        help="run DockerRequirement image NAME as the image with this "
                             "content digest (sha256:...); repeatable (a peer's run comes "
                             "with the digests its sender resolved)")
    return parser


def _pinned_image(text: str) -> tuple[str, str]:
    name, _, digest = text.rpartition("=")
    if not name or not is_digest(digest):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=sha256:<64 hex digits>")
    return name, digest


class RunSession:
    """Owns the run's job record and hands cwltool the executor for the steps."""

    def __init__(self, client: ClusterClient, config: Config, argv: Sequence[str],
                 steps: StepRunner) -> None:
        self._client = client
        self._config = config
        self._argv = list(argv)
        self._steps = steps
        self.run_uuid: str | None = None
        self._own_job = False

    def begin(self, process: Any, job_order: Any = None) -> None:
        """Record the run as a job (once it really runs: not for --validate); first,
        an unknown cluster in a RunOnCluster hint fails the run before anything runs.
        The job mounts the collections its inputs name that this cluster holds, so that
        its token (its steps' parent) may read them."""
        if self.run_uuid is not None:
            return
        self._steps.check_hints(process)
        if self._steps.steps_on is not None:
            self._steps.check_cluster_ids([self._steps.steps_on])
        if self._client.caller_job() is not None:
            self.run_uuid = self._client.caller_job()
            return
        name = Path(str(process.tool.get("id", "run"))).name.split("#")[0] or "run"
        named = sorted(pdh for pdh in referenced_pdhs(job_order or {})
                       if self._client.has_collection(pdh))
        claim = self._client.start_own_job(
            JobSpec(command=("cwl-crunch-runner", *self._argv), name=name, cores=0.25,
                    ram=256 << 20, mounts={f"inputs/{index}": CollectionMount(pdh)
                                           for index, pdh in enumerate(named)}),
            this_worker())
        self.run_uuid, self._own_job = claim.job.uuid, True
        self._steps.client = open_client(self._config.replace(api_token=claim.token),
                                         job_api=JobApi)

    def interrupt(self, signum: int, frame: object) -> None:
        """Ctrl-C or SIGTERM: cancel the running steps and start no new ones; cwltool then
        ends the run as failed. A second Ctrl-C stops at once.

        Not an exception in cwltool's thread: its executor joins the step threads while
        holding the workflow lock they need, so a KeyboardInterrupt there never returns.
        """
        if self._steps.interrupted.is_set():
            raise KeyboardInterrupt
        self._steps.interrupted.set()
        if self.run_uuid is not None:
            # From a thread: this handler may have interrupted a database transaction.
            threading.Thread(target=self._client.cancel, args=(self.run_uuid,),
                             name="cancel-run", daemon=True).start()

    @property
    def interrupted(self) -> bool:
        return self._steps.interrupted.is_set()

    def finish(self, exit_code: int, interrupted: bool) -> None:
        if not self._own_job or self.run_uuid is None:
            return
        if interrupted:
            self._client.cancel(self.run_uuid)
        state = JobState.COMPLETE
        reason = None
        if interrupted:
            state, reason = JobState.CANCELLED, "interrupted"
        elif exit_code != 0:
            # The run's job fails with its workflow; its finished steps stay reusable.
            state, reason = JobState.FAILED, f"the workflow failed (exit code {exit_code})"
        self._client.finish_job(self.run_uuid,
                                JobOutcome(state, exit_code, None, None, reason,
                                           EndReason.EXIT))
        if self._steps.client is not self._client:
            self._steps.client.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    if args.in_one_job:
        # Inside the one job (its record is the run's): cwltool's own executor and tools.
        return int(cwltool.main.main(args=args, custom_schema_callback=use_extensions))
    try:
        config = load_config(container_engine=args.container_engine, api_url=args.cluster)
        if args.submit and not config.api_url:
            raise ConfigError("--submit needs a cluster: --cluster URL or CWL_CRUNCH_API_URL")
        if args.runner_cluster and not args.submit:
            raise ConfigError("--runner-cluster goes with --submit")
        # Embedded, the steps' own programs reach the cluster through an API served from
        # here (started at the first step; FastAPI imported only if a step connects).
        client = open_client(config, job_api=JobApi)
    except CrunchError as error:
        print(f"cwl-crunch-runner: {error}", file=sys.stderr)
        return 1
    if args.submit:
        try:
            return submit_run(args, client)
        except (CrunchError, WorkflowException, ValidationException) as error:
            print(f"cwl-crunch-runner: {error}", file=sys.stderr)
            return 1
        finally:
            client.close()
    progress = Progress(None if args.quiet else sys.stderr)
    containers = RunnerContainers(find_engine(config.container_engine),
                                  turned_off=config.container_engine == NO_ENGINE,
                                  remote=bool(config.api_url),
                                  pins=dict(args.pin_image)) \
        if args.use_container else None
    steps = StepRunner(client, reuse=not args.disable_reuse, progress=progress,
                       containers=containers, federation=federation_of(config, client))
    steps.steps_on = args.steps_on_cluster
    session = RunSession(client, config, arguments, steps)
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # respect a background job's
            signal.signal(signum, session.interrupt)
    exit_code, interrupted = 1, False
    try:
        exit_code = cwltool.main.main(
            args=args, executor=CrunchExecutor(
                steps, session.begin,
                steps_in_flight=REMOTE_STEPS_IN_FLIGHT if config.api_url else None),
            loadingContext=_loading_context(args, steps),
            runtimeContext=_runtime_context(args, steps),
            custom_schema_callback=use_extensions)
    except KeyboardInterrupt:
        interrupted, exit_code = True, 130
    finally:
        progress.close()
        if session.interrupted:
            interrupted, exit_code = True, 130
            print("cwl-crunch-runner: interrupted; running steps were cancelled (run the "
                  "same command again to resume)", file=sys.stderr)
        session.finish(exit_code, interrupted)
        client.close()
    return exit_code


def federation_of(config: Config, client: ClusterClient) -> Federation:
    """The run's reach into its cluster's peers: through its server (which holds the
    peer tokens), or, embedded, with the peer tokens of this config."""
    from cwl_crunch.federation.links import CorePeerLinks, HttpPeerLinks, links_for

    links = links_for(client)
    if isinstance(links, HttpPeerLinks):
        def over_http(token: str, job_uuid: str) -> tuple[PeerLinks, ClusterClient]:
            step_client = HttpClient(config.replace(api_token=token))
            return HttpPeerLinks(step_client), step_client

        return Federation(client.cluster_id, links, over_http)
    from cwl_crunch.core import EmbeddedClient  # here: a runner of a server's cluster
                                                # (every runner job) never loads the core
    assert isinstance(client, EmbeddedClient) and isinstance(links, CorePeerLinks)

    def embedded(token: str, job_uuid: str) -> tuple[PeerLinks, ClusterClient]:
        return (links.as_job(job_uuid, token.split("/")[1]),
                EmbeddedClient.over(client.core, job_uuid))

    return Federation(client.cluster_id, links, embedded)


def _loading_context(args: argparse.Namespace, steps: StepRunner) -> LoadingContext:
    context = LoadingContext(vars(args))
    context.construct_tool_object = make_tool_factory(steps)
    context.relax_path_checks = True
    return context


def _runtime_context(args: argparse.Namespace,
                     steps: StepRunner) -> RuntimeContext:
    context = RuntimeContext(vars(args))
    context.workflow_job_step_name_callback = StepNames(
        Path(str(args.workflow)).stem or "main")
    # cwltool types these as classes but only ever calls them: factories with our client.
    # steps.client is read at each call: once the run is a job, the run's own token (and
    # that client's cache, which the copy-out to --outdir reads from) is used.
    context.make_fs_access = lambda basedir: CrunchFsAccess(  # type: ignore[assignment]
        basedir, client=steps.client, updates=steps.updates, remote=steps.remote)
    context.path_mapper = functools.partial(  # type: ignore[assignment]
        CrunchPathMapper, uploads=Uploads(lambda: steps.client), updates=steps.updates)
    return context


if __name__ == "__main__":
    sys.exit(main())
