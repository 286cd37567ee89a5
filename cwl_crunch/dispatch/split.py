"""Two dispatchers as one: jobs under one core to one, whole-core jobs to the other.

A server dispatching to SLURM keeps its sub-core jobs (workflow runners, 0.25 core, which
mostly wait for their steps) on its own host: SLURM allocates whole CPUs, so each runner
would hold a CPU of the cluster while it waits, and wait in SLURM's queue before that.
Which of the two runs a job is model.routing's decision: the records' queue queries
ask it (``jobs.queued_candidates(whole_cores=...)``), and so does a submission here.
"""

from __future__ import annotations

from cwl_crunch.dispatch.base import Dispatcher
from cwl_crunch.model import JobSpec, NodeSize
from cwl_crunch.model.routing import HOST, Routing


class SplitDispatcher(Dispatcher):
    name = "split"

    def __init__(self, small: Dispatcher, whole: Dispatcher, routing: Routing) -> None:
        self.small = small
        self.whole = whole
        self._routing = routing

    @property
    def jobs_ended(self) -> int:  # type: ignore[override]
        return self.small.jobs_ended + self.whole.jobs_ended

    def check_fits(self, spec: JobSpec) -> None:
        (self.small if self._routing.route(spec) == HOST else self.whole).check_fits(spec)

    def largest_node(self) -> NodeSize:
        # What a step asking for more than a node has is fitted to: one core or more.
        return self.whole.largest_node()

    def start(self) -> None:
        self.small.start()
        self.whole.start()

    def wake(self) -> None:
        self.small.wake()
        self.whole.wake()

    def reap_orphans(self) -> int:
        return self.small.reap_orphans() + self.whole.reap_orphans()

    def stop(self) -> None:
        self.whole.stop()
        self.small.stop()
