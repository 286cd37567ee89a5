"""Where a process must run because of where its inputs stay: a collection resident on
a cluster never leaves it, so a CommandLineTool reading one runs there, and a process
hinted elsewhere fails before it runs, naming the collection and its cluster.

The runner asks its cluster where each ``keep:`` input is (``PeerLinks.whereabouts``:
this cluster, then its peers), once per collection and run. A run on a cluster without
peers asks nothing: everything it reads is here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cwltool.errors import WorkflowException

from cwl_crunch.cwl.layout import referenced_pdhs
from cwl_crunch.errors import CrunchError
from cwl_crunch.federation.links import PeerLinks
from cwl_crunch.model.residency import Whereabouts


class Placement:
    def __init__(self, home: str, links: Callable[[], PeerLinks]) -> None:
        self._home = home
        self._links = links
        self._known: dict[str, list[Whereabouts]] = {}
        self._lock = threading.Lock()

    def places(self, pdh: str) -> list[Whereabouts]:
        """Where ``pdh`` is (asked once per run)."""
        with self._lock:
            found = self._known.get(pdh)
        if found is None:
            try:
                found = self._links().whereabouts(pdh)
            except CrunchError as error:
                raise WorkflowException(f"cannot learn where collection {pdh} is: "
                                        f"{error}") from None
            with self._lock:
                self._known[pdh] = found
        return found

    def resident_on(self, pdh: str) -> str | None:
        """The cluster where ``pdh`` is resident (None: nowhere)."""
        return next((place.cluster_id for place in self.places(pdh) if place.resident), None)

    def resident_sites(self, inputs: Any) -> dict[str, str]:
        """The collections of ``inputs`` resident somewhere, each with that cluster."""
        return {pdh: site for pdh in sorted(referenced_pdhs(inputs))
                if (site := self.resident_on(pdh)) is not None}

    def required_site(self, what: str, inputs: Any) -> str | None:
        """The cluster that ``what``'s resident inputs keep it on (None: none does, or
        this one). WorkflowException if they stay on two clusters."""
        sites = self.resident_sites(inputs)
        clusters = sorted(set(sites.values()))
        if len(clusters) > 1:
            named = ", ".join(f"{pdh} on {site}" for pdh, site in sites.items())
            raise WorkflowException(f"{what} reads collections resident on different "
                                    f"clusters ({named}): one job cannot run on both, "
                                    "and resident data never leaves its cluster")
        if not clusters or clusters[0] == self._home:
            return None
        return clusters[0]

    def check(self, what: str, inputs: Any, target: str | None) -> None:
        """WorkflowException unless every resident input of ``what`` stays on the
        cluster it is sent to (``target``; None: this one)."""
        where = target or self._home
        for pdh, site in self.resident_sites(inputs).items():
            if site != where:
                raise WorkflowException(
                    f"{what}: its input collection {pdh} is resident on cluster {site}, "
                    f"and RunOnCluster sends it to cluster {where}: resident data never "
                    f"leaves its cluster (drop the hint, and it runs on {site})")
