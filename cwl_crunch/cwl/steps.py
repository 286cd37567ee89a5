"""Submitting a run's steps as child jobs and waiting for them, with a progress line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from cwltool.errors import WorkflowException

from cwl_crunch.cwl.containers import RunnerContainers
from cwl_crunch.cwl.hints import cluster_hint, literal_cluster_ids
from cwl_crunch.cwl.inplace import InplaceUpdates
from cwl_crunch.cwl.placement import Placement
from cwl_crunch.cwl.remote_outputs import RemoteOutputs
from cwl_crunch.cwl.resources import fit_resources
from cwl_crunch.errors import CrunchError
from cwl_crunch.model import ClusterClient, JobRecord, JobSpec, NodeSize

if TYPE_CHECKING:
    from cwltool.process import Process

    from cwl_crunch.cwl.remote import Federation
    from cwl_crunch.federation.links import PeerLinks

logger = logging.getLogger("cwl_crunch.cwl")


class Progress:
    """Counts of the run's steps; drawn as one line on a terminal."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream if stream is not None and stream.isatty() else None
        self._lock = threading.Lock()
        self.queued = self.done = self.reused = self.failed = 0

    def change(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
            if self._stream is not None:
                # Not yet split into queued and running: the step threads only learn
                # when their job ends.
                self._stream.write(f"\rsteps: {self.queued} queued or running, "
                                   f"{self.done} done, {self.reused} reused, "
                                   f"{self.failed} failed ")
                self._stream.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.write("\n")


class StepRunner:
    """Runs step jobs on the cluster with the run's token (so they are its children)."""

    def __init__(self, client: ClusterClient, *, reuse: bool, progress: Progress,
                 containers: RunnerContainers | None = None,
                 federation: Federation | None = None) -> None:
        """``containers`` None: run every tool on the host (``--no-container``).
        ``federation``: this cluster's peers, for processes hinted to run on one."""
        self.client = client
        self.federation = federation
        self.steps_on: str | None = None
        """``--steps-on-cluster``: every CommandLineTool runs on that cluster."""
        self.reuse = reuse
        self.containers = containers
        self.updates = InplaceUpdates()
        self.progress = progress
        self.interrupted = threading.Event()
        """Set on Ctrl-C: no new step starts; the running ones are being cancelled."""
        self._largest: NodeSize | None = None
        self._largest_lock = threading.Lock()
        self.remote = RemoteOutputs(self._peer_links)
        """Outputs of the run's remote steps, pulled home in parts when read here."""
        self._placement: Placement | None = None
        self._placement_known = False
        self._placement_lock = threading.Lock()

    def _peer_links(self) -> PeerLinks:
        """The peer links of the run's current token (see RemoteOutputs)."""
        from cwl_crunch.client.http import HttpClient
        from cwl_crunch.federation.links import HttpPeerLinks

        if isinstance(self.client, HttpClient):
            return HttpPeerLinks(self.client)
        if self.federation is None:
            raise WorkflowException("this cluster has no peers")
        return self.federation.links

    def placement(self) -> Placement | None:
        """Where resident inputs keep processes (None: this cluster has no peers, so
        everything runs here)."""
        from cwl_crunch.client.http import HttpClient

        with self._placement_lock:
            if not self._placement_known:
                if isinstance(self.client, HttpClient) or self.federation is not None:
                    try:
                        peers = self._peer_links().known_peers()
                    except CrunchError as error:
                        raise WorkflowException(f"cannot list this cluster's peers: "
                                                f"{error}") from None
                    if peers:
                        self._placement = Placement(self.client.cluster_id,
                                                    self._peer_links)
                self._placement_known = True
            return self._placement

    def resident_site(self, process: Process, inputs: Any) -> str | None:
        """The peer a CommandLineTool with no RunOnCluster runs on because inputs of it
        are resident there (None: here)."""
        placement = self.placement()
        if placement is None or process.tool.get("class") != "CommandLineTool":
            return None
        site = placement.required_site(f"process {_process_name(process)}", inputs)
        if site is not None:
            self.check_cluster_ids([site])
        return site

    def localized(self, what: str, value: Any, *, staying_on: str | None = None) -> Any:
        """``value`` (a JobSpec or an object of Files) with what it names of remote
        steps' outputs pulled home (see RemoteOutputs); ``what`` names it in an error."""
        try:
            if isinstance(value, JobSpec):
                return self.remote.localized_spec(value)
            return self.remote.localized(value, staying_on=staying_on)
        except CrunchError as error:
            raise WorkflowException(f"{what}: could not bring home what it reads of the "
                                    f"outputs of steps on other clusters: {error}") from None

    def largest_node(self) -> NodeSize:
        """The cluster's largest node, asked once per run."""
        with self._largest_lock:
            if self._largest is None:
                try:
                    self._largest = self.client.largest_node()
                except CrunchError as error:
                    raise WorkflowException(
                        f"cannot learn the size of the cluster's nodes: {error}") from None
            return self._largest

    def select_resources(self, request: Mapping[str, int | float], _context: Any, *,
                         required: bool, step: str) -> dict[str, int | float]:
        """cwltool's ``RuntimeContext.select_resources`` hook, for one step."""
        fitted = fit_resources(request, self.largest_node(), required=required, step=step)
        for warning in fitted.warnings:
            logger.warning("%s", warning)
        return fitted.resources

    def run_step(self, name: str, spec: JobSpec) -> JobRecord:
        if self.interrupted.is_set():
            raise WorkflowException(f"step {name} not started: the run was interrupted")
        record = self.client.submit(self.localized(f"step {name}", spec))
        if record.finished:
            self.progress.change(reused=1 if record.reused_job_uuid else 0,
                                 done=0 if record.reused_job_uuid else 1)
            return record
        self.progress.change(queued=1)
        waited = self.client.wait([record.uuid])[0]
        self.progress.change(queued=-1, done=1 if waited.succeeded else 0,
                             failed=0 if waited.succeeded else 1)
        return waited

    def cluster_for(self, process: Process, inputs: Any, evaluate: Any) -> str | None:
        """The peer that ``process`` runs on (None: this cluster), from its
        RunOnCluster hint, evaluated against its inputs by ``evaluate``."""
        target = self._hinted_cluster(process, evaluate)
        placement = self.placement()
        if placement is not None:
            placement.check(f"process {_process_name(process)}", inputs, target)
        return target

    def _hinted_cluster(self, process: Process, evaluate: Any) -> str | None:
        if self.steps_on is not None and process.tool.get("class") == "CommandLineTool":
            return None if self.steps_on == self.client.cluster_id else self.steps_on
        hint = cluster_hint(process)
        if hint is None:
            return None
        value = evaluate(hint["cluster_id"])
        home = self.client.cluster_id
        if not isinstance(value, str) or not value:
            raise WorkflowException(f"RunOnCluster: cluster_id {hint['cluster_id']!r} "
                                    f"gave {value!r}, not a cluster id")
        if value == home:
            return None
        self.check_cluster_ids([value])
        return value

    def check_cluster_ids(self, cluster_ids: list[str]) -> None:
        """WorkflowException naming the known peers unless each id is this cluster or
        one of its peers."""
        home = self.client.cluster_id
        unknown = [cluster_id for cluster_id in cluster_ids if cluster_id != home]
        if not unknown:
            return
        peers = self.federation.links.known_peers() if self.federation is not None else []
        for cluster_id in unknown:
            if cluster_id not in peers:
                raise WorkflowException(
                    f"RunOnCluster: cluster {cluster_id!r} is neither this cluster "
                    f"({home}) nor one of its peers ({', '.join(peers) or 'none'})")

    def check_hints(self, process: Process) -> None:
        """Before anything runs: every cluster id written out in the workflow's hints
        must be known (ids from expressions are checked when evaluated)."""
        found: list[str] = []
        process.visit(lambda document: found.extend(literal_cluster_ids(document)))
        self.check_cluster_ids(sorted(set(found)))

    def run_remote(self, name: str, packed: dict[str, Any], job_order: Any,
                   peer_id: str) -> Any:
        """Run one process on ``peer_id`` (see cwl.remote); its output object."""
        from cwl_crunch.cwl.remote import run_remote

        if self.interrupted.is_set():
            raise WorkflowException(f"step {name} not started: the run was interrupted")
        if self.federation is None:
            raise WorkflowException(f"step {name}: RunOnCluster {peer_id}, but this "
                                    "cluster has no peers")
        return run_remote(self, self.federation, name, packed, job_order, peer_id)


def _process_name(process: Process) -> str:
    return str(process.tool.get("id", "")).rsplit("#", 1)[-1].rsplit("/", 1)[-1] or "(inline)"
