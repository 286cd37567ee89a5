"""The HTTP client and signed locators: manifests arrive signed for its token, are
checked against their PDH with the signatures stripped, and the signed forms are what it
names those blocks by when it stores a collection of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.model import JobSpec
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.store import CollectionStore, locator_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    config = load_config(home=tmp_path / "home", poll_interval=0.05, container_engine="none")
    with ServerThread(config) as running:
        yield running


def test_a_block_seen_in_a_carried_output_is_named_signed_and_not_sent(
        server: ServerThread, tmp_path: Path) -> None:
    client = HttpClient(server.core.config.replace(api_url=server.url,
                                                   api_token=server.create_token()))
    sent: list[httpx.Request] = []
    client._transport.http.event_hooks["request"].append(sent.append)
    try:
        job = client.submit(JobSpec(("sh", "-c", "echo said > out/said.txt"), reuse=False))
        [done] = client.wait([job.uuid], timeout=30)
        assert done.succeeded and done.output_pdh, done
        # The output came with the job's final event: read without asking, PDH checked.
        assert [e.path for e in client.list_collection(done.output_pdh)] == ["said.txt"]
        assert b"".join(client.read_file(done.output_pdh, "said.txt")) == b"said\n"
        assert not [r for r in sent if "/collections/" in r.url.path]
        # Stored again from a local copy: the block is named as it was signed in the
        # event, so the server takes it without its bytes.
        (tmp_path / "said.txt").write_bytes(b"said\n")
        sent.clear()
        pdh = client.put_paths([tmp_path / "said.txt"])
        assert pdh == CollectionStore(tmp_path / "reference").put_paths([tmp_path / "said.txt"])
        assert not [r for r in sent if r.method == "PUT"]
        [asked] = [r for r in sent if r.url.path.endswith("/blocks/missing")]
        assert f'"{locator_for(b"said" + bytes([10]))}+A'.encode() in asked.content
        assert server.core.store.manifest_text(pdh).count(b"+A") == 0
    finally:
        client.close()
