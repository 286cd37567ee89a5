"""Routing between the dispatcher of sub-core jobs and that of whole-core jobs."""

from __future__ import annotations

import pytest

from cwl_crunch.config import load_config
from cwl_crunch.core import EmbeddedClient
from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.dispatch.split import SplitDispatcher
from cwl_crunch.errors import SubmitError
from cwl_crunch.model import JobSpec, NodeSize
from cwl_crunch.model.routing import Routing


class Recording(Dispatcher):
    """Says what it was asked (a fake: the routing is all this tests)."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.jobs_ended = 0

    def check_fits(self, spec: JobSpec) -> None:
        self.calls.append(f"fits {spec.cores:g}")

    def largest_node(self) -> NodeSize:
        self.calls.append("largest")
        return NodeSize(cores=float(len(self.calls)), ram=1 << 30)

    def start(self) -> None:
        self.calls.append("start")

    def wake(self) -> None:
        self.calls.append("wake")

    def reap_orphans(self) -> int:
        self.calls.append("reap")
        return 1

    def stop(self) -> None:
        self.calls.append("stop")


def test_jobs_under_one_core_go_to_the_small_dispatcher():
    small, whole = Recording(), Recording()
    split = SplitDispatcher(small, whole, Routing("slurm"))
    for cores in (0.25, 0.999, 1 - 1e-12, 1.0, 16.0):
        split.check_fits(JobSpec(("true",), cores=cores))
    assert small.calls == ["fits 0.25", "fits 0.999"]
    assert whole.calls == ["fits 1", "fits 1", "fits 16"]


def test_the_largest_node_is_that_of_the_whole_core_dispatcher():
    """A step asking for more than a node has is one of a core or more: SLURM's."""
    small, whole = Recording(), Recording()
    whole.calls.append("earlier")
    assert SplitDispatcher(small, whole, Routing("slurm")).largest_node() == NodeSize(2.0, 1 << 30)
    assert small.calls == []


def test_everything_else_goes_to_both():
    small, whole = Recording(), Recording()
    split = SplitDispatcher(small, whole, Routing("slurm"))
    split.start()
    split.wake()
    assert split.reap_orphans() == 2
    small.jobs_ended, whole.jobs_ended = 3, 4
    assert split.jobs_ended == 7
    split.stop()
    assert small.calls == whole.calls == ["start", "wake", "reap", "stop"]


def test_an_embedded_cluster_refuses_jobs_meant_for_slurm(tmp_path):
    """Only a server runs the SLURM dispatcher (its workers report to it)."""
    config = load_config(environ={}, home=tmp_path / "home", dispatcher="slurm")
    with EmbeddedClient(config) as client:
        with pytest.raises(SubmitError, match="slurm dispatcher, which only `cwl-crunch "
                                              "server` runs"):
            client.submit(JobSpec(("true",), cores=1.0))
        small = client.submit(JobSpec(("true",), cores=0.5))
        assert client.wait([small.uuid], timeout=30)[0].succeeded
