"""ClusterClient.largest_node, the same through both clients: what a CWL runner judges
its steps' resources against."""

from __future__ import annotations

import os

import cwl_crunch
from cwl_crunch.model import NodeSize


def test_the_largest_node_of_a_local_cluster_is_this_machine_as_its_dispatcher_sees_it(
        client):
    total_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert client.largest_node() == NodeSize(cores=float(os.cpu_count() or 1),
                                             ram=int(total_ram * 0.9))


def test_the_configured_ceilings_are_the_node(tmp_path):
    with cwl_crunch.connect(home=tmp_path / "home", max_cores=8.0, max_ram=3 << 30) as cl:
        assert cl.client.largest_node() == NodeSize(cores=8.0, ram=3 << 30)
