"""Pulling a collection between clusters (two embedded cores stand for two peers, one
more for the target): only missing blocks move, each checked against its hash, a
damaged copy is taken from the next peer, and no intact copy anywhere is an error
naming the block, the collection and what each peer said."""

from __future__ import annotations

from pathlib import Path

import pytest
from damage import stealthy_flip

from cwl_crunch.config import load_config
from cwl_crunch.core import EmbeddedClient
from cwl_crunch.errors import PullFailed
from cwl_crunch.federation import pull_collection
from cwl_crunch.store.locators import parse_locator


@pytest.fixture
def three(tmp_path):
    clients = {name: EmbeddedClient(load_config({"CWL_CRUNCH_HOME": str(tmp_path / name),
                                                 "CWL_CRUNCH_CLUSTER_ID": name}))
               for name in ("sitea", "siteb", "sitec")}
    yield clients
    for client in clients.values():
        client.close()


def stored(client: EmbeddedClient, folder: Path, files: dict[str, bytes]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return client.put_paths([folder / name for name in files])


def block_file(client: EmbeddedClient, locator: str) -> Path:
    digest = parse_locator(locator.split("+A")[0])[0]
    return client.config.store / "blocks" / digest[:2] / digest


def locators_of(client: EmbeddedClient, pdh: str) -> list[str]:
    from cwl_crunch.store import Manifest

    manifest = Manifest.from_text(client.get_manifest(pdh))
    return [loc for entry in manifest.files() for loc in entry.locators]


def test_only_missing_blocks_move(three, tmp_path):
    sitea, siteb = three["sitea"], three["siteb"]
    shared = b"shared block " * 1000
    pdh = stored(sitea, tmp_path / "a", {"one.txt": shared, "two.txt": b"only on a\n"})
    stored(siteb, tmp_path / "b", {"one.txt": shared})  # siteb holds one block already
    report = pull_collection(pdh, [("sitea", sitea)], siteb)
    assert (report.blocks, report.bytes, report.source) == (1, len(b"only on a\n"), "sitea")
    assert b"".join(siteb.read_file(pdh, "two.txt")) == b"only on a\n"
    again = pull_collection(pdh, [("sitea", sitea)], siteb)
    assert (again.blocks, again.bytes) == (0, 0)


def test_a_damaged_copy_is_taken_from_the_next_peer(three, tmp_path):
    sitea, siteb, sitec = three["sitea"], three["siteb"], three["sitec"]
    files = {"data.txt": b"precious bytes\n" * 100}
    pdh = stored(sitea, tmp_path / "a", files)
    assert stored(siteb, tmp_path / "b", files) == pdh
    [locator] = locators_of(sitea, pdh)
    stealthy_flip(block_file(sitea, locator))
    report = pull_collection(pdh, [("sitea", sitea), ("siteb", siteb)], sitec)
    assert report.blocks == 1
    assert b"".join(sitec.read_file(pdh, "data.txt")) == files["data.txt"]


def test_no_intact_copy_fails_naming_block_collection_and_peers(three, tmp_path):
    sitea, sitec = three["sitea"], three["sitec"]
    pdh = stored(sitea, tmp_path / "a", {"data.txt": b"rotten\n" * 50})
    [locator] = locators_of(sitea, pdh)
    stealthy_flip(block_file(sitea, locator))
    with pytest.raises(PullFailed) as failed:
        pull_collection(pdh, [("sitea", sitea)], sitec)
    message = str(failed.value)
    assert locator.split("+A")[0] in message and pdh in message and "sitea:" in message
    assert not sitec.has_collection(pdh)


def test_a_collection_no_peer_has_fails_naming_them(three):
    with pytest.raises(PullFailed, match="no peer could give its manifest"):
        pull_collection("0" * 64 + "+10", [("sitea", three["sitea"]),
                                           ("siteb", three["siteb"])], three["sitec"])
