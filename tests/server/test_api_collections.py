"""Collections over HTTP: the same PDH as the embedded store, only missing blocks sent,
big files moved in bounded memory on both sides, and damage caught on both sides."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import http_client

from cwl_crunch.client.http import HttpClient
from cwl_crunch.errors import CorruptBlock
from cwl_crunch.server.serve import ServerThread
from cwl_crunch.store import CollectionStore, locator_for

MiB = 1 << 20


def make_tree(root: Path) -> list[Path]:
    """Two top-level paths with the awkward cases: nesting, empty files and dirs, names
    with spaces, percent signs and non-ASCII, an executable, a file of several MiB."""
    tree = root / "tree"
    (tree / "a" / "b" / "c").mkdir(parents=True)
    (tree / "empty dir").mkdir()
    (tree / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (tree / "a" / "empty").write_bytes(b"")
    (tree / "a" / "50% off ü.txt").write_text("percent\n")
    (tree / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "random.bin").write_bytes(os.urandom(3 * MiB + 17))
    (tree / "dup.txt").write_text("deep\n")  # the same block as deep.txt
    single = root / "single.txt"
    single.write_text("on its own\n")
    return [tree, single]


class CountingClient:
    """An HttpClient whose block uploads are counted."""

    def __init__(self, server: ServerThread, token: str) -> None:
        self.client = http_client(server, token)
        self.puts: list[str] = []
        self.client._transport.http.event_hooks["request"].append(self._seen)

    def _seen(self, request: httpx.Request) -> None:
        if request.method == "PUT":
            self.puts.append(request.url.path.rsplit("/", 1)[-1])


def test_put_paths_over_http_gives_the_pdh_the_embedded_store_gives(
        api_server: ServerThread, api_client: HttpClient, tmp_path: Path) -> None:
    paths = make_tree(tmp_path / "src")
    embedded = CollectionStore(tmp_path / "reference")
    expected = embedded.put_paths(paths)
    pdh = api_client.put_paths(paths)
    assert pdh == expected
    assert api_server.core.store.manifest_text(pdh) == embedded.manifest_text(pdh)
    assert api_client.list_collection(pdh) == embedded.list(pdh)
    assert api_client.list_collection(pdh, "tree/a") == embedded.list(pdh, "tree/a")
    assert api_client.has_collection(pdh)
    # And back: the same bytes and modes.
    out = tmp_path / "out"
    out.mkdir()
    api_client.get_collection(pdh, "", out)
    for original in [*paths[0].rglob("*"), paths[1]]:
        copy = out / original.relative_to(tmp_path / "src")
        assert copy.exists(), copy
        if original.is_file():
            assert copy.read_bytes() == original.read_bytes()
            assert os.access(copy, os.X_OK) == os.access(original, os.X_OK), copy
    assert b"".join(api_client.read_file(pdh, "tree/random.bin")) == \
        (paths[0] / "random.bin").read_bytes()


def test_only_blocks_the_server_lacks_are_uploaded(api_server: ServerThread, api_token: str,
                                                   tmp_path: Path) -> None:
    paths = make_tree(tmp_path / "src")
    first = CountingClient(api_server, api_token)
    pdh = first.client.put_paths(paths)
    blocks = {loc for f in api_server.core.store.manifest(pdh).files() for loc in f.locators}
    assert sorted(first.puts) == sorted(blocks)  # each block once, dup.txt's not twice
    assert api_server.core.store.missing_blocks(sorted(blocks)) == []
    # Again, from a client that knows nothing: the server has every block.
    second = CountingClient(api_server, api_token)
    assert second.client.put_paths(paths) == pdh
    assert second.puts == []
    # One new file among the old: that block alone.
    (paths[0] / "new.txt").write_text("new\n")
    third = CountingClient(api_server, api_token)
    third.client.put_paths(paths)
    assert third.puts == [locator_for(b"new\n")]
    for counting in (first, second, third):
        counting.client.close()


SERVER = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    sys.path[:0] = sys.argv[2:]
    from api_helpers import api_config
    from cwl_crunch.server.serve import ServerThread
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with ServerThread(api_config(Path(sys.argv[1]))) as server:
        print(json.dumps({"url": server.url, "token": server.create_token(), "rss": peak()}),
              flush=True)
        while sys.stdin.readline():
            print(json.dumps({"rss": peak()}), flush=True)
""")
CLIENT = textwrap.dedent("""
    import hashlib, json, resource, sys
    from pathlib import Path
    from cwl_crunch.client.http import HttpClient
    from cwl_crunch.config import load_config
    url, token, source, dest = sys.argv[1:]
    client = HttpClient(load_config(environ={}, api_url=url, api_token=token))
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"start": peak()}
    pdh = client.put_paths([Path(source)])
    result["put"] = peak()
    client.get_collection(pdh, Path(source).name, Path(dest))
    result["get"] = peak()
    digest = hashlib.sha256()
    for chunk in client.read_file(pdh, Path(source).name):
        digest.update(chunk)
    result.update(read=peak(), pdh=pdh, sha256=digest.hexdigest())
    print(json.dumps(result))
""")
SMALL, LARGE = 64 * MiB + 1, 256 * MiB + 1
"""Two and five 64 MiB blocks: memory that grows with the file grows by 192 MiB between
them; bounded memory (a block or a few, whatever the file) does not."""


def random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for offset in range(0, size, 4 * MiB):
            chunk = os.urandom(min(4 * MiB, size - offset))
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def peak_growth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, int]]:
    """Peak RSS growth (bytes) of a client process putting, getting and reading one big
    file, and of the server process, for a SMALL file then a LARGE one."""
    tmp = tmp_path_factory.mktemp("big")
    here = Path(__file__).parent
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp / "home"), str(here), str(here.parent)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    growth: dict[str, dict[int, int]] = {"client": {}, "server": {}}
    try:
        started = json.loads(server.stdout.readline())
        for size in (SMALL, LARGE):
            source, copy = tmp / f"{size}.bin", tmp / f"{size}.copy"
            digest = random_file(source, size)
            client = subprocess.run(
                [sys.executable, "-c", CLIENT, started["url"], started["token"],
                 str(source), str(copy)], capture_output=True, text=True, timeout=240,
                check=False)
            assert client.returncode == 0, client.stderr
            result = json.loads(client.stdout)
            assert result["sha256"] == digest
            assert hashlib.file_digest(copy.open("rb"), "sha256").hexdigest() == digest
            growth["client"][size] = result["read"] - result["start"]
            server.stdin.write("measure\n")
            server.stdin.flush()
            growth["server"][size] = json.loads(server.stdout.readline())["rss"] - \
                started["rss"]
            source.unlink()
            copy.unlink()
    finally:
        server.stdin.close()
        server.wait(30)
    print("peak RSS growth (MiB) by file size (MiB):",
          {who: {size // MiB: grown // MiB for size, grown in sizes.items()}
           for who, sizes in growth.items()})
    return growth


def assert_bounded(grown: dict[int, int], who: str) -> None:
    extra = grown[LARGE] - grown[SMALL]
    assert extra < (LARGE - SMALL) / 2, (
        f"the {who} grew by {extra // MiB} MiB more for a {LARGE // MiB} MiB file than for a "
        f"{SMALL // MiB} MiB one ({grown[SMALL] // MiB} -> {grown[LARGE] // MiB} MiB)")


@pytest.mark.slow
def test_the_server_moves_a_big_file_in_bounded_memory(
        peak_growth: dict[str, dict[int, int]]) -> None:
    assert_bounded(peak_growth["server"], "server")


@pytest.mark.slow
def test_the_client_moves_a_big_file_in_bounded_memory(
        peak_growth: dict[str, dict[int, int]]) -> None:
    assert_bounded(peak_growth["client"], "client")


def damage_block(server: ServerThread, locator: str) -> None:
    """Change one byte of a stored block, keeping its size."""
    path = server.core.store.root / "blocks" / locator[:2] / locator.split("+")[0]
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_block_damaged_on_the_server_raises_corrupt_block(
        api_server: ServerThread, api_client: HttpClient, tmp_path: Path) -> None:
    paths = make_tree(tmp_path / "src")
    pdh = api_client.put_paths(paths)
    locator = locator_for((paths[0] / "random.bin").read_bytes())
    damage_block(api_server, locator)
    with pytest.raises(CorruptBlock) as raised:
        b"".join(api_client.read_file(pdh, "tree/random.bin"))
    assert (raised.value.block, raised.value.collection) == (locator, pdh)
    with pytest.raises(CorruptBlock):
        api_client.get_collection(pdh, "tree", tmp_path / "out")
    # The undamaged files still read.
    assert b"".join(api_client.read_file(pdh, "single.txt")) == b"on its own\n"


def test_the_client_checks_every_block_it_receives(
        api_server: ServerThread, api_client: HttpClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server (or anything between) handing out wrong bytes is caught by the client."""
    paths = make_tree(tmp_path / "src")
    pdh = api_client.put_paths(paths)
    real = api_server.core.store.read_block

    def tampered(locator: str, collection: Any = None) -> bytes:
        data = real(locator, collection)
        return data[:-1] + bytes([data[-1] ^ 1])

    monkeypatch.setattr(api_server.core.store, "read_block", tampered)
    with pytest.raises(CorruptBlock, match="do not match"):
        b"".join(api_client.read_file(pdh, "single.txt"))
    with pytest.raises(CorruptBlock):
        api_client.get_collection(pdh, "single.txt", tmp_path / "copy.txt")
