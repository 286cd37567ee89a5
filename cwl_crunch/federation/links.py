"""What a cluster does for its callers with its peers: hand a run to a peer, follow it,
cancel it, and pull its results home. One logic (``CorePeerLinks``, over this cluster's
core and the peer tokens of its config), reached in-process by an embedded runner and
by the server's ``/peers/...`` routes; ``HttpPeerLinks`` is a runner's view of those
routes. The caller (a job of this cluster) becomes the parent of the remote run.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from cwl_crunch.config import Config
from cwl_crunch.errors import (
    ApiError,
    CollectionNotFound,
    CrunchError,
    ResidencyError,
    SubmitError,
)
from cwl_crunch.federation.peers import peer_client
from cwl_crunch.federation.pull import (
    PullPlan,
    PullReport,
    complete_pull,
    plan_part_pull,
    plan_pull,
)
from cwl_crunch.model import (
    JOB_PAGE_LIMIT,
    ClusterClient,
    CollectionEntry,
    JobFilter,
    JobRecord,
)
from cwl_crunch.model.codec import entry_from_dict, record_from_dict
from cwl_crunch.model.residency import Whereabouts, whereabouts_from_dict
from cwl_crunch.model.runs import RunRequest

if TYPE_CHECKING:
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.core import ClusterCore


class PeerClients:
    """One HTTP client per peer of the config, made at first use and kept."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._clients: dict[str, HttpClient] = {}
        self._lock = threading.Lock()

    def known(self) -> list[str]:
        return sorted(self.config.peers)

    def get(self, peer_id: str) -> HttpClient:
        peer = self.config.peers.get(peer_id)
        if peer is None:
            raise SubmitError(f"cluster {peer_id!r} is not a peer of cluster "
                              f"{self.config.cluster_id} (peers: "
                              f"{', '.join(self.known()) or 'none'})")
        with self._lock:
            found = self._clients.get(peer_id)
        if found is None:
            found = peer_client(self.config, peer)
            with self._lock:
                found = self._clients.setdefault(peer_id, found)
        return found

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


class PeerLinks(abc.ABC):
    """A caller's reach into this cluster's peers."""

    @abc.abstractmethod
    def known_peers(self) -> list[str]:
        """The cluster ids of this cluster's peers."""

    @abc.abstractmethod
    def hand_run(self, peer_id: str, request: RunRequest) -> JobRecord:
        """Start ``request`` on the peer, below the caller's job; its record there."""

    @abc.abstractmethod
    def remote_job(self, peer_id: str, uuid: str) -> JobRecord:
        """The record of job ``uuid`` on the peer."""

    @abc.abstractmethod
    def wait_remote(self, peer_id: str, uuid: str, timeout: float) -> JobRecord:
        """The record of job ``uuid`` on the peer once it has ended, or after ``timeout``
        seconds: the wait follows the peer's event stream (it is not a poll)."""

    @abc.abstractmethod
    def cancel(self, peer_id: str, uuid: str) -> JobRecord:
        """Cancel job ``uuid`` on the peer, and its subtree there."""

    @abc.abstractmethod
    def remote_children(self, peer_id: str, parent_uuid: str) -> list[JobRecord]:
        """The jobs on the peer whose parent is ``parent_uuid`` (a job of this cluster
        handed there, or one of the peer's below it)."""

    @abc.abstractmethod
    def pull_results(self, peer_id: str, uuid: str) -> JobRecord:
        """Pull job ``uuid``'s output and log collections home from the peer (only the
        blocks this cluster lacks); the caller may read them afterwards."""

    @abc.abstractmethod
    def pull_part(self, peer_id: str, pdh: str, paths: Sequence[str], made_by: str) -> str:
        """Pull home the part of collection ``pdh`` at or below ``paths`` (see
        store.manifest_subset): ``pdh`` is the output or log of job ``made_by`` on the
        peer. Only the blocks this cluster lacks move; the PDH of the part, which the
        caller may read afterwards."""

    @abc.abstractmethod
    def remote_entries(self, peer_id: str, pdh: str, made_by: str) -> list[CollectionEntry]:
        """Every file and directory of collection ``pdh`` (the output or log of job
        ``made_by`` on the peer), read there: no block moves."""


    @abc.abstractmethod
    def whereabouts(self, pdh: str) -> list[Whereabouts]:
        """Where collection ``pdh`` is: this cluster first; if it does not hold it (or
        it is resident here), each peer that answers and holds it, and whether it is
        resident there."""


class CorePeerLinks(PeerLinks):
    def __init__(self, core: ClusterCore, peers: PeerClients, *, caller_job: str | None,
                 caller_token: str) -> None:
        """``caller_job``: the job whose token calls (None: a person's); ``caller_token``:
        that token's UUID (the remote run's owner)."""
        self._core, self._peers = core, peers
        self._caller_job, self._caller_token = caller_job, caller_token

    def as_job(self, job_uuid: str, token_uuid: str) -> CorePeerLinks:
        """These links, with job ``job_uuid``'s token (UUID ``token_uuid``) calling."""
        return CorePeerLinks(self._core, self._peers, caller_job=job_uuid,
                             caller_token=token_uuid)

    def known_peers(self) -> list[str]:
        return self._peers.known()

    def hand_run(self, peer_id: str, request: RunRequest) -> JobRecord:
        remote = self._peers.get(peer_id)
        pdhs = [pdh for pdh in dict.fromkeys([request.run_pdh, *request.input_pdhs])
                if pdh not in request.made_by]  # those are there already
        sent = [pdh for pdh in pdhs if not self._held_there(peer_id, pdh, request)]
        for pdh in sent:
            self._core.entry(pdh)  # CollectionNotFound here, not a failed pull there
            found = self._core.resident_here(pdh)
            if found is not None:
                raise ResidencyError(f"collection {pdh} is resident on cluster "
                                     f"{self._core.cluster_id} ({found.reason}): it "
                                     f"cannot be sent to cluster {peer_id}")
        for pdh in sent:
            self._core.note_sent(peer_id, pdh)
        images = self._offered_images(peer_id, request.images)
        body = {**request.as_dict(), "images": images, "parent_uuid": self._caller_job,
                "owner": self._caller_token}
        return record_from_dict(remote.post_json("/federation/runs", body))

    def _held_there(self, peer_id: str, pdh: str, request: RunRequest) -> bool:
        """An input this cluster does not hold and the peer says it does (its own
        resident data, or what it may read): named, not sent. The run's own
        collection is always sent."""
        if pdh == request.run_pdh or self._core.has_collection(pdh):
            return False
        answer = self._asked(peer_id, pdh)
        if not (answer.held and answer.resident):
            # Other collections of the peer are named with the job that made them
            # (made_by), which the caller must reach.
            raise CollectionNotFound(f"collection {pdh} is neither on cluster "
                                     f"{self._core.cluster_id} nor resident on cluster "
                                     f"{peer_id}")
        return True

    def _asked(self, peer_id: str, pdh: str) -> Whereabouts:
        """What the peer says of ``pdh``; ApiError if it says nothing that parses."""
        said = self._peers.get(peer_id).get_json(f"/federation/collections/{pdh}")
        try:
            return whereabouts_from_dict(said)
        except (KeyError, TypeError, ValueError):
            raise ApiError(f"cluster {peer_id} answered {str(said)[:200]!r} for where "
                           f"collection {pdh} is", 502) from None

    def whereabouts(self, pdh: str, *, here: bool = True) -> list[Whereabouts]:
        """``here`` False: this cluster is said not to hold it (the caller may not
        learn that it does)."""
        place = self._core.whereabouts(pdh)
        local = place if here else Whereabouts(place.cluster_id, held=False)
        if local.held and not local.resident:
            return [local]
        found = [local]
        for peer_id in self._peers.known():
            with contextlib.suppress(CrunchError):  # down: it says nothing now
                answer = self._asked(peer_id, pdh)
                if answer.held:
                    found.append(answer)
        return found

    def _offered_images(self, peer_id: str, names: Iterable[str]) -> dict[str, str]:
        """The images of ``names`` this cluster's engine has, by digest (what the caller
        said of their digests is not asked: the engine says), offered to ``peer_id``;
        the peer gets others as it can (a registry, or its engine has them)."""
        offered = {}
        for name in names:
            digest = self._core.image_digest_here(name)  # None: not here, or no engine
            if digest is not None:
                self._core.note_sent_image(peer_id, digest, name)
                offered[name] = digest
        return offered

    def peer_client(self, peer_id: str) -> HttpClient:
        """A client of ``peer_id`` with the token it issued to this cluster."""
        return self._peers.get(peer_id)

    def remote_job(self, peer_id: str, uuid: str) -> JobRecord:
        return self._peers.get(peer_id).get_job(uuid)

    def wait_remote(self, peer_id: str, uuid: str, timeout: float) -> JobRecord:
        return self._peers.get(peer_id).wait([uuid], timeout)[0]

    def cancel(self, peer_id: str, uuid: str) -> JobRecord:
        return self._peers.get(peer_id).cancel(uuid)

    def remote_children(self, peer_id: str, parent_uuid: str) -> list[JobRecord]:
        return self._peers.get(peer_id).list_jobs(JobFilter(parent_uuid=parent_uuid,
                                                            limit=JOB_PAGE_LIMIT))

    def pull_results(self, peer_id: str, uuid: str) -> JobRecord:
        record = self.remote_job(peer_id, uuid)
        for pdh in (record.output_pdh, record.log_pdh):
            if pdh is not None:
                self.pull(peer_id, pdh)
        return record

    def pull_part(self, peer_id: str, pdh: str, paths: Sequence[str], made_by: str) -> str:
        sources = self._sources(peer_id)
        part, plan = plan_part_pull(pdh, paths, sources, self._target())
        if plan is not None:
            complete_pull(plan, sources, self._target())
        if self._caller_job is not None:
            self._core.note_upload(self._caller_job, part)
        return part

    def remote_entries(self, peer_id: str, pdh: str, made_by: str) -> list[CollectionEntry]:
        return self._peers.get(peer_id).list_collection(pdh)

    def pull(self, peer_id: str, pdh: str) -> PullReport:
        """Pull one collection from ``peer_id`` first, then (for what it cannot give
        intact) any other peer."""
        plan = self.plan(peer_id, pdh)
        report = PullReport(pdh) if plan is None else self.complete(plan)
        if self._caller_job is not None:
            self._core.note_upload(self._caller_job, pdh)
        return report

    def plan(self, peer_id: str, pdh: str, *, prove: bool = False) -> PullPlan | None:
        """What pulling ``pdh`` from ``peer_id`` moves (None: it is here already).
        ``prove``: here already, but ``peer_id`` must give every block of it, itself."""
        if prove:
            return plan_pull(pdh, [(peer_id, self._peers.get(peer_id))], self._target(),
                             prove=True)
        return plan_pull(pdh, self._sources(peer_id), self._target())

    def complete(self, plan: PullPlan) -> PullReport:
        return complete_pull(plan, self._sources(plan.source), self._target())

    def _sources(self, first: str) -> list[tuple[str, ClusterClient]]:
        sources: list[tuple[str, ClusterClient]] = [(first, self._peers.get(first))]
        for other in self._peers.known():
            if other != first:
                with contextlib.suppress(CrunchError):  # down: not a source now
                    sources.append((other, self._peers.get(other)))
        return sources

    def _target(self) -> ClusterClient:
        from cwl_crunch.core import EmbeddedClient

        return EmbeddedClient.over(self._core)


class HttpPeerLinks(PeerLinks):
    """A caller's reach through its cluster's server (``/api/v1/peers/...``)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def known_peers(self) -> list[str]:
        return [str(peer["cluster_id"]) for peer in self._client.get_json("/peers")]

    def hand_run(self, peer_id: str, request: RunRequest) -> JobRecord:
        return record_from_dict(self._client.post_json(f"/peers/{peer_id}/runs",
                                                       request.as_dict()))

    def remote_job(self, peer_id: str, uuid: str) -> JobRecord:
        return record_from_dict(self._client.get_json(f"/peers/{peer_id}/jobs/{uuid}"))

    def wait_remote(self, peer_id: str, uuid: str, timeout: float) -> JobRecord:
        return record_from_dict(self._client.get_json(
            f"/peers/{peer_id}/jobs/{uuid}/wait?timeout={timeout:g}"))

    def cancel(self, peer_id: str, uuid: str) -> JobRecord:
        return record_from_dict(self._client.post_json(f"/peers/{peer_id}/jobs/{uuid}/cancel",
                                                       {}))

    def remote_children(self, peer_id: str, parent_uuid: str) -> list[JobRecord]:
        return [record_from_dict(record) for record in self._client.get_json(
            f"/peers/{peer_id}/jobs?parent={parent_uuid}&limit={JOB_PAGE_LIMIT}")]

    def pull_results(self, peer_id: str, uuid: str) -> JobRecord:
        return record_from_dict(self._client.post_json(f"/peers/{peer_id}/jobs/{uuid}/pull",
                                                       {}))


    def pull_part(self, peer_id: str, pdh: str, paths: Sequence[str], made_by: str) -> str:
        answer = self._client.post_json(f"/peers/{peer_id}/collections/{pdh}/part",
                                        {"job": made_by, "paths": list(paths)})
        return str(answer["pdh"])

    def remote_entries(self, peer_id: str, pdh: str, made_by: str) -> list[CollectionEntry]:
        return [entry_from_dict(entry) for entry in self._client.get_json(
            f"/peers/{peer_id}/collections/{pdh}/entries?job={made_by}")]

    def whereabouts(self, pdh: str) -> list[Whereabouts]:
        return [whereabouts_from_dict(place) for place in self._client.get_json(
            f"/collections/{pdh}/whereabouts")]


def links_for(client: ClusterClient) -> PeerLinks:
    """A caller's peer links: through its cluster's server, or, embedded, with the peer
    tokens of its config."""
    from cwl_crunch.client.http import HttpClient

    if isinstance(client, HttpClient):
        return HttpPeerLinks(client)
    from cwl_crunch.core import EmbeddedClient  # only then: a server's runner never loads it

    assert isinstance(client, EmbeddedClient)
    return CorePeerLinks(client.core, PeerClients(client.config), caller_job=None,
                         caller_token="")


REMOTE_STEP = ("cwl-crunch-runner", "--on-cluster")
"""How a home step handed to a peer begins its command: then the peer's id."""


def handed_to(job: JobRecord) -> str | None:
    """The peer a home step job was handed to (its remote runner is there), or None."""
    command = job.spec.command
    return command[2] if command[:2] == REMOTE_STEP and len(command) > 2 else None


def known_or_error(links: PeerLinks, cluster_ids: Sequence[str], home: str) -> None:
    """SubmitError naming the known peers if any of ``cluster_ids`` is neither this
    cluster nor one of its peers."""
    peers = links.known_peers()
    for cluster_id in cluster_ids:
        if cluster_id != home and cluster_id not in peers:
            raise SubmitError(f"RunOnCluster: cluster {cluster_id!r} is neither this "
                              f"cluster ({home}) nor one of its peers "
                              f"({', '.join(peers) or 'none'})")
