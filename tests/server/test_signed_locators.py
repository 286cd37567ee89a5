"""Blocks by proof (issue 12, finding 4), against a real ``cwl-crunch server`` process: a
token learns of a block, and may put it in a collection, only if the block was handed to
it signed (a manifest it may read, the answer to its upload) or it sent the bytes."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from polling import wait_until

from cwl_crunch.client.http import HttpClient
from cwl_crunch.config import load_config
from cwl_crunch.model import CollectionMount, JobSpec
from cwl_crunch.records.blob_signing import BlobSigner, signer_for, token_uuid_of
from cwl_crunch.store import CollectionStore, locator_for, pdh_for
from cwl_crunch.store.locators import manifest_locators, split_signature, strip_signatures
from cwl_crunch.worker.processes import this_worker

HEADER = "cwl-crunch-manifest 1\n"
CLI = [sys.executable, "-c", "from cwl_crunch.cli.main import main; main()"]
PINS = [f"{number:04d}".encode() for number in range(10_000)]


class Server:
    """A ``cwl-crunch server`` process on loopback over a home of its own."""

    def __init__(self, home: Path, log: Path) -> None:
        self.home = home
        self.env = {"CWL_CRUNCH_HOME": str(home), "CWL_CRUNCH_CONTAINER_ENGINE": "none",
                    "CWL_CRUNCH_POLL_INTERVAL": "0.05", "PATH": os.environ["PATH"],
                    "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        self._log = log
        with log.open("w") as sink:
            self.process = subprocess.Popen([*CLI, "server", "--listen", "127.0.0.1:0"],
                                            stderr=sink, stdin=subprocess.DEVNULL,
                                            env=self.env)
        self.url = wait_until(lambda: re.search(r" at (http://\S+)", log.read_text()),
                              timeout=30, what="the server's banner")[1]
        self.store = CollectionStore(home / "store")

    def token(self) -> str:
        """A new person's token (``cwl-crunch token create`` on the server's home)."""
        made = subprocess.run([*CLI, "token", "create"], env=self.env, capture_output=True,
                              text=True, timeout=60, check=True)
        return made.stdout.strip()

    def client(self, token: str) -> HttpClient:
        return HttpClient(load_config(environ={}, home=self.home / "client-side",
                                      api_url=self.url, api_token=token))

    def http(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=60,
                            headers={"Authorization": f"Bearer {token}"})

    def signer(self) -> BlobSigner:
        """The server's own key, read from its home (as its SLURM workers read it)."""
        config = load_config(environ={}, home=self.home)
        return signer_for(config.home, "", config.blob_signature_ttl)

    def stored(self) -> list[str]:
        root = self.home / "store"
        return sorted(str(path.relative_to(root)) for top in ("blocks", "manifests")
                      for path in (root / top).rglob("*") if path.is_file())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("signed")
    running = Server(tmp / "home", tmp / "server.log")
    yield running
    running.stop()


class People:
    """Alice, who stored a 4-digit PIN and a file she keeps to herself; Bob, another
    person; a job of Bob's (a runner he started, given one collection of Alice's)."""

    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.alice_token, self.bob_token = server.token(), server.token()
        self.alice, self.bob = server.client(self.alice_token), server.client(self.bob_token)
        self.pin = secrets.choice(PINS)
        (tmp_path / "pin.txt").write_bytes(self.pin)
        self.pin_pdh = self.alice.put_paths([tmp_path / "pin.txt"])
        (tmp_path / "shared.txt").write_text("Alice shares this with the job\n")
        self.shared_pdh = self.alice.put_paths([tmp_path / "shared.txt"])
        claim = self.bob.start_own_job(JobSpec(
            command=("runner",), mounts={"in": CollectionMount(self.shared_pdh)}),
            this_worker())
        self.job_token = claim.token
        self.job = server.client(claim.token)

    def close(self) -> None:
        for client in (self.alice, self.bob, self.job):
            client.close()


@pytest.fixture
def people(server: Server, tmp_path: Path) -> Iterator[People]:
    made = People(server, tmp_path)
    yield made
    made.close()


def stolen_manifest(locator: str, size: int) -> str:
    return f"{HEADER}f stolen.txt - {size} {locator}\n"


@pytest.mark.timeout(120)
def test_guessed_locators_are_all_reported_missing(server: Server, people: People) -> None:
    guesses = [locator_for(pin) for pin in PINS]
    for token in (people.job_token, people.bob_token):
        with server.http(token) as http:
            answer = http.post("/blocks/missing", json={"locators": guesses})
            assert answer.status_code == 200, answer.text
            assert answer.json()["missing"] == guesses  # the stored PIN among them
            assert answer.json()["signed"] == {}
    # Alice uploaded it: to her, it is there (and handed back signed).
    with server.http(people.alice_token) as http:
        answer = http.post("/blocks/missing", json={"locators": guesses}).json()
    pin_block = locator_for(people.pin)
    assert pin_block not in answer["missing"] and len(answer["missing"]) == len(PINS) - 1
    assert split_signature(answer["signed"][pin_block])[1] is not None


@pytest.mark.timeout(120)
def test_a_manifest_over_an_unproven_locator_is_refused_and_nothing_stored(
        server: Server, people: People) -> None:
    pin_block = locator_for(people.pin)
    before = server.stored()
    for token in (people.job_token, people.bob_token):
        with server.http(token) as http:
            refused = http.post("/collections", content=stolen_manifest(pin_block, 4))
            assert refused.status_code == 403, refused.text
            assert pin_block in refused.json()["detail"]
            # Nor through blocks/missing first: it still answers "missing".
            assert http.post("/blocks/missing", json={"locators": [pin_block]}).json()[
                "missing"] == [pin_block]
    assert server.stored() == before
    with server.http(people.alice_token) as http:
        stolen_pdh = pdh_for(stolen_manifest(pin_block, 4).encode())
        assert http.get(f"/collections/{stolen_pdh}").status_code == 404
    # Sending the bytes is the proof: the block was there already, and the upload is
    # answered with its locator signed for the sender, who may then use it, bare too.
    with server.http(people.bob_token) as http:
        put = http.put(f"/blocks/{pin_block}", content=people.pin,
                       headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 201, put.text
        assert server.signer().problem(put.json()["locator"],
                                       token_uuid_of(people.bob_token)) is None
        assert http.post("/blocks/missing", json={"locators": [pin_block]}).json()[
            "missing"] == []
        made = http.post("/collections", content=stolen_manifest(pin_block, 4))
        assert made.status_code == 201 and made.json()["pdh"] == stolen_pdh, made.text


@pytest.mark.timeout(120)
def test_forged_expired_and_other_tokens_signatures_are_refused(
        server: Server, people: People) -> None:
    pin_block = locator_for(people.pin)
    signer, job = server.signer(), token_uuid_of(people.job_token)
    for_alice = signer.sign(pin_block, token_uuid_of(people.alice_token))
    stale = time.time() - signer.ttl - 60
    other_cluster = BlobSigner(secrets.token_hex(32).encode(), signer.ttl)
    presented = {
        "forged": f"{pin_block}+A{secrets.token_hex(32)}@{int(time.time()) + 3600:08x}",
        "expired": signer.sign(pin_block, job, now=stale),
        "Alice's": for_alice,
        "Alice's, its expiry moved": re.sub(r"@[0-9a-f]+$", f"@{int(time.time()) + 9999:08x}",
                                            for_alice),
        "another key's": other_cluster.sign(pin_block, job),
    }
    before = server.stored()
    with server.http(people.job_token) as http:
        for kind, locator in presented.items():
            refused = http.post("/collections", content=stolen_manifest(locator, 4))
            assert refused.status_code == 403, (kind, refused.text)
            assert pin_block in refused.json()["detail"], kind
            answer = http.post("/blocks/missing", json={"locators": [locator]}).json()
            assert answer == {"missing": [pin_block], "signed": {}}, kind
        assert "expired" in http.post("/collections", content=stolen_manifest(
            presented["expired"], 4)).json()["detail"]
    assert server.stored() == before
    # The same block, signed for the job's own token and in date, is taken.
    with server.http(people.job_token) as http:
        taken = http.post("/collections",
                          content=stolen_manifest(signer.sign(pin_block, job), 4))
        assert taken.status_code == 201, taken.text


@pytest.mark.timeout(120)
def test_own_uploads_and_blocks_read_are_accepted_with_pdhs_unchanged(
        server: Server, people: People, tmp_path: Path) -> None:
    # A manifest read is signed for the reader; stripped, it is the stored text.
    with server.http(people.job_token) as http:
        text = http.get(f"/collections/{people.shared_pdh}/manifest").content
    [signed] = manifest_locators(text)
    assert server.signer().problem(signed, token_uuid_of(people.job_token)) is None
    assert strip_signatures(text) == server.store.manifest_text(people.shared_pdh)
    # The job copies what it read into a collection of its own: nothing is uploaded,
    # the blocks are named signed, and the PDH is the one any store gives the tree.
    assert people.job.list_collection(people.shared_pdh)
    copy = tmp_path / "copy"
    copy.mkdir()
    people.job.get_collection(people.shared_pdh, "shared.txt", copy / "shared.txt")
    (copy / "note.txt").write_text("the job's own\n")
    sent: list[tuple[str, bytes]] = []
    people.job._transport.http.event_hooks["request"].append(
        lambda request: sent.append((f"{request.method} {request.url.path}",
                                     request.content if request.method == "POST" else b"")))
    made = people.job.put_paths([copy])
    assert made == CollectionStore(tmp_path / "reference").put_paths([copy])
    own = locator_for(b"the job's own\n")
    assert [what for what, _ in sent if what.startswith("PUT")] == [f"PUT /api/v1/blocks/{own}"]
    # The block read was named in its signed form (as signed for the job's read), not bare.
    asked = json.loads(next(body for what, body in sent if what.endswith("/blocks/missing")))
    shared_block = split_signature(signed)[0]
    [named] = [loc for loc in asked["locators"] if loc.startswith(shared_block)]
    assert server.signer().problem(named, token_uuid_of(people.job_token)) is None
    stored = server.store.manifest_text(made)
    assert b"+A" not in stored and stored == strip_signatures(stored)
    # Its own upload, named bare, is taken too; so is Alice's block by Alice.
    with server.http(people.job_token) as http:
        assert http.post("/collections", content=stolen_manifest(own, 14)).status_code == 201
    with server.http(people.alice_token) as http:
        answer = http.post("/collections", content=stolen_manifest(locator_for(people.pin), 4))
        assert answer.status_code == 201, answer.text
    # Existing collections read as before, by PDH.
    assert b"".join(people.alice.read_file(people.pin_pdh, "pin.txt")) == people.pin


@pytest.mark.timeout(120)
def test_a_worker_sharing_the_store_publishes_what_it_stored(server: Server,
                                                            people: People) -> None:
    """``cwl-crunch worker`` (as SLURM runs it, with the job's token) stores its job's
    output into the store itself: it signs those locators with the key of the home it
    shares with the server, and the server takes the collections it names."""
    claim = people.bob.start_own_job(JobSpec(
        command=("sh", "-c", "echo from the worker > out/made.txt")), this_worker())
    env = {**server.env, "CWL_CRUNCH_API_URL": server.url, "CWL_CRUNCH_API_TOKEN": claim.token}
    ran = subprocess.run([*CLI, "worker", claim.job.uuid], env=env, capture_output=True,
                         text=True, timeout=90, check=False)
    assert ran.returncode == 0, ran.stderr
    record = people.bob.get_job(claim.job.uuid)
    assert record.state == "Complete" and record.output_pdh, record
    assert b"".join(people.bob.read_file(record.output_pdh, "made.txt")) == \
        b"from the worker\n"


@pytest.mark.timeout(120)
def test_a_job_token_cannot_tell_a_guessed_collection_from_none(server: Server,
                                                               people: People) -> None:
    """The PDH of a one-file collection is as easy to guess as its block's locator."""
    guessed = [pdh_for(stolen_manifest(locator_for(pin), 4).replace("stolen", "pin")
                       .encode()) for pin in [*PINS[:50], people.pin]]
    assert people.pin_pdh in guessed
    with server.http(people.job_token) as http:
        answers = {(response.status_code, response.json()["detail"].replace(pdh, "PDH"))
                   for pdh in guessed for response in (http.get(f"/collections/{pdh}"),)}
    assert len(answers) == 1 and next(iter(answers))[0] == 403, answers
