"""model.routing: the one decision of which backend runs a job."""

from __future__ import annotations

import pytest

from cwl_crunch.dispatch import DISPATCHERS
from cwl_crunch.model import BACKENDS, JobSpec
from cwl_crunch.model.routing import HOST, Routing


@pytest.mark.parametrize(("dispatcher", "cores", "backend"), [
    ("local", 0.25, "local"), ("local", 1.0, "local"), ("local", 16.0, "local"),
    ("slurm", 0.25, "local"), ("slurm", 0.999, "local"),
    ("slurm", 1.0, "slurm"), ("slurm", 1 - 1e-12, "slurm"), ("slurm", 64.0, "slurm"),
])
def test_route_sends_whole_cores_to_the_dispatcher_and_the_rest_to_the_host(
        dispatcher: str, cores: float, backend: str) -> None:
    assert Routing(dispatcher).route(JobSpec(("true",), cores=cores)) == backend


def test_the_queue_filters_agree_with_route() -> None:
    """What each backend's queue query takes is what route sends it: every job is
    taken by exactly one backend."""
    for dispatcher in BACKENDS:
        routing = Routing(dispatcher)
        for cores in (0.1, 0.5, 0.999999, 1.0, 2.0):
            takers = []
            for backend in routing.backends():
                whole = routing.whole_cores(backend)
                if whole is None or whole == (cores >= 1 - 1e-9):
                    takers.append(backend)
            assert takers == [routing.route_cores(cores)], (dispatcher, cores)


def test_every_backend_has_a_dispatcher_in_the_registry() -> None:
    assert tuple(DISPATCHERS) == BACKENDS
    assert HOST in BACKENDS


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend 'pbs'"):
        Routing("pbs")
