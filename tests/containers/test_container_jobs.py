"""Jobs with an image, through the SDK: on a real engine (Podman or Docker; the tests
marked ``podman``), and refused at submit without one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from polling import wait_until
from procs import processes_with

import cwl_crunch
from cwl_crunch import CollectionMount
from cwl_crunch.cli.main import main
from cwl_crunch.containers import CONTAINER_ROOT, is_digest
from cwl_crunch.containers.engine import HOW_TO_GET_ONE
from cwl_crunch.errors import SubmitError

BASE_IMAGE = "docker.io/debian:stable-slim"

FINISH = 15.0
"""Seconds a short container job may take from submit to its record's end."""


def finished(cluster: cwl_crunch.Cluster, uuid: str, timeout: float = FINISH):
    record = cluster.client.wait([uuid], timeout)[0]
    assert record.finished, f"job {uuid} still {record.state} after {timeout} s"
    return record


def log_text(cluster, record, name: str) -> str:
    assert record.log_pdh is not None, record
    return cluster.read_text(record.log_pdh, name)


def running_container(job_containers, uuid: str):
    for container in job_containers(uuid):
        container.reload()
        if container.status == "running":
            return container
    return None


# -- running -----------------------------------------------------------------------------

@pytest.mark.podman
def test_job_runs_in_its_image_with_stdin_stdout_and_exit_code(
        engine_cluster, docker_client, tmp_path, job_containers):
    source = tmp_path / "lines.txt"
    source.write_text("one\ntwo\nthree\n")
    pdh = engine_cluster.put(source)
    # Its own pid namespace (the command is pid 1) and the job dir at CONTAINER_ROOT.
    script = ('wc -l; echo "$GREETING from $(pwd) as pid $$"; '
              'echo to-stderr >&2; exit 3')
    future = engine_cluster.submit(
        ["sh", "-c", script], image=BASE_IMAGE, mounts={"in": CollectionMount(pdh)},
        stdin="in/lines.txt", stdout="out/report.txt", env={"GREETING": "hello"})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete", record.failure_reason
    assert record.exit_code == 3
    assert engine_cluster.read_text(record.output_pdh, "report.txt") == (
        f"3\nhello from {CONTAINER_ROOT} as pid 1\n")
    assert log_text(engine_cluster, record, "stderr.txt") == "to-stderr\n"
    # The record holds the content digest of the name, as the engine knows it.
    assert record.spec.image == BASE_IMAGE
    assert record.image_digest is not None and is_digest(record.image_digest)
    assert record.image_digest == docker_client.images.get(BASE_IMAGE).id
    worker_log = log_text(engine_cluster, record, "worker.txt")
    assert f"image: {BASE_IMAGE} ({record.image_digest})" in worker_log
    assert job_containers(record.uuid) == []


@pytest.mark.podman
def test_stdin_and_stdout_carry_megabytes_of_binary_data(engine_cluster, tmp_path):
    data = os.urandom(2_000_000)
    (tmp_path / "blob.bin").write_bytes(data)
    pdh = engine_cluster.put(tmp_path / "blob.bin")
    future = engine_cluster.submit(["cat"], image=BASE_IMAGE, stdin="in/blob.bin",
                                   stdout="out/copy.bin", time_limit=8,
                                   mounts={"in": CollectionMount(pdh)})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete" and record.exit_code == 0, record.failure_reason
    copy = b"".join(engine_cluster.client.read_file(record.output_pdh, "copy.bin"))
    assert copy == data


@pytest.mark.podman
def test_inputs_are_read_only_inside_the_container(engine_cluster, tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("original\n")
    pdh = engine_cluster.put(source)
    script = ('for target in in/data.txt one.txt; do '
              '  if echo changed > "$target"; then echo "wrote $target"; '
              '  else echo "refused $target"; fi; done; '
              'touch in/new 2>/dev/null && echo "made in/new"; '
              'rm -f in/data.txt 2>/dev/null && echo "removed in/data.txt"; '
              'cat in/data.txt one.txt')
    future = engine_cluster.submit(
        ["sh", "-c", script], image=BASE_IMAGE, stdout="out/result.txt",
        stderr="out/errors.txt",
        mounts={"in": CollectionMount(pdh), "one.txt": CollectionMount(pdh, "data.txt")})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete", record.failure_reason
    assert record.exit_code == 0
    assert engine_cluster.read_text(record.output_pdh, "result.txt") == (
        "refused in/data.txt\nrefused one.txt\noriginal\noriginal\n")
    errors = engine_cluster.read_text(record.output_pdh, "errors.txt")
    assert errors.count("Read-only file system") == 2, errors
    # The store's blocks (the inputs were links to them) are intact: read verifies them.
    assert engine_cluster.read_text(pdh, "data.txt") == "original\n"


@pytest.mark.podman
def test_files_are_owned_by_the_user_not_the_images_user(engine_cluster, images, nonce,
                                                        tmp_path):
    image = images.build(f"FROM {BASE_IMAGE}\nUSER 1234:1234",
                         tag=f"localhost/crunch-user-{nonce}:v1")
    # What makes this test able to fail: the image says to run as someone else.
    assert image.attrs["Config"]["User"] == "1234:1234"
    assert os.getuid() != 1234
    seed = tmp_path / "seed.txt"
    seed.write_text("seed\n")
    pdh = engine_cluster.put(seed)
    script = ('id -u > out/uid; id -g > out/gid; mkdir out/sub; echo x > out/sub/x; '
              'stat -c %u:%g out/sub/x > out/out-owner; '
              'echo y > scratch/new; stat -c %u:%g scratch/new > out/scratch-owner; '
              'cat scratch/seed.txt >> scratch/new')
    future = engine_cluster.submit(
        ["sh", "-c", script], image=f"localhost/crunch-user-{nonce}:v1",
        mounts={"scratch": CollectionMount(pdh, writable=True)})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete" and record.exit_code == 0, (
        record.failure_reason, log_text(engine_cluster, record, "stderr.txt"))
    mine = f"{os.getuid()}:{os.getgid()}"
    assert engine_cluster.read_text(record.output_pdh, "uid") == f"{os.getuid()}\n"
    assert engine_cluster.read_text(record.output_pdh, "gid") == f"{os.getgid()}\n"
    assert engine_cluster.read_text(record.output_pdh, "out-owner") == f"{mine}\n"
    assert engine_cluster.read_text(record.output_pdh, "scratch-owner") == f"{mine}\n"
    assert engine_cluster.read_text(record.output_pdh, "sub/x") == "x\n"


@pytest.mark.podman
def test_no_network_by_default_and_a_network_when_asked(engine_cluster):
    command = ["ls", "/sys/class/net"]
    offline = engine_cluster.submit(command, image=BASE_IMAGE, stdout="out/net.txt")
    online = engine_cluster.submit(command, image=BASE_IMAGE, stdout="out/net.txt",
                                   network=True)
    off, on = finished(engine_cluster, offline.uuid), finished(engine_cluster, online.uuid)

    assert off.state == on.state == "Complete", (off.failure_reason, on.failure_reason)
    assert engine_cluster.read_text(off.output_pdh, "net.txt").split() == ["lo"]
    interfaces = engine_cluster.read_text(on.output_pdh, "net.txt").split()
    assert "lo" in interfaces and len(interfaces) > 1, interfaces
    # Same command, different network: different work, not reused.
    assert on.reused_job_uuid is None


@pytest.mark.podman
def test_the_images_environment_is_kept_and_the_jobs_wins(engine_cluster, images, nonce):
    name = f"localhost/crunch-env-{nonce}:v1"
    images.build(f"""FROM {BASE_IMAGE}
RUN mkdir -p /opt/tool/bin && printf '#!/bin/sh\\necho tool ran\\n' > /opt/tool/bin/mytool \\
    && chmod +x /opt/tool/bin/mytool
ENV PATH=/opt/tool/bin:/usr/local/bin:/usr/bin:/bin FROM_IMAGE=image OVERRIDDEN=image""",
                 tag=name)
    script = ('mytool; echo "$FROM_IMAGE $OVERRIDDEN"; t=$(mktemp) && echo temp > "$t" '
              '&& case "$t" in "$TMPDIR"/*) echo "temp file in TMPDIR";; esac')
    future = engine_cluster.submit(["sh", "-c", script], image=name, stdout="out/env.txt",
                                   env={"OVERRIDDEN": "job"})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete" and record.exit_code == 0, (
        record.failure_reason, log_text(engine_cluster, record, "stderr.txt"))
    assert engine_cluster.read_text(record.output_pdh, "env.txt") == (
        "tool ran\nimage job\ntemp file in TMPDIR\n")


@pytest.mark.podman
def test_an_images_entrypoint_gets_the_command_as_arguments(engine_cluster):
    future = engine_cluster.submit(["-c", "echo moo > out/cow"], image="docker.io/bash:4.4")
    record = finished(engine_cluster, future.uuid)
    assert record.state == "Complete" and record.exit_code == 0, record.failure_reason
    assert engine_cluster.read_text(record.output_pdh, "cow") == "moo\n"


@pytest.mark.podman
def test_output_symlinks_to_container_paths_are_kept_and_escapes_dropped(engine_cluster,
                                                                         tmp_path):
    source = tmp_path / "data.txt"
    source.write_text("original\n")
    pdh = engine_cluster.put(source)
    script = (f"echo made > out/made.txt; ln -s {CONTAINER_ROOT}/in/data.txt out/abs; "
              f"ln -s ../in/data.txt out/rel; ln -s {CONTAINER_ROOT}/out/made.txt out/self; "
              "ln -s /etc/hostname out/escape")
    future = engine_cluster.submit(["sh", "-c", script], image=BASE_IMAGE,
                                   mounts={"in": CollectionMount(pdh)})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete" and record.exit_code == 0, record.failure_reason
    entries = {e.path: e.kind for e in engine_cluster.client.list_collection(record.output_pdh)}
    # Links the command made to where it saw its job dir are the files they named...
    assert engine_cluster.read_text(record.output_pdh, "abs") == "original\n"
    assert engine_cluster.read_text(record.output_pdh, "rel") == "original\n"
    assert engine_cluster.read_text(record.output_pdh, "self") == "made\n"
    # ...and a link out of the job dir does not carry a host file into the output.
    assert "escape" not in entries, entries


@pytest.mark.podman
def test_output_symlinks_through_a_bind_are_kept(engine_cluster):
    script = "echo made > /other/made.txt; ln -s /other/made.txt out/via-bind"
    future = engine_cluster.submit(["sh", "-c", script], image=BASE_IMAGE,
                                   binds={"/other": "out"})
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Complete" and record.exit_code == 0, record.failure_reason
    assert engine_cluster.read_text(record.output_pdh, "made.txt") == "made\n"
    assert engine_cluster.read_text(record.output_pdh, "via-bind") == "made\n"


# -- stopping ----------------------------------------------------------------------------

@pytest.mark.podman
def test_time_limit_stops_the_container(engine_cluster, job_containers):
    started = time.monotonic()
    future = engine_cluster.submit(["sleep", "60"], image=BASE_IMAGE, time_limit=2)
    record = finished(engine_cluster, future.uuid)
    elapsed = time.monotonic() - started

    assert record.state == "Failed", record
    assert "time limit" in (record.failure_reason or ""), record.failure_reason
    assert elapsed < FINISH
    assert job_containers(record.uuid) == []


@pytest.mark.podman
def test_cancel_stops_and_removes_the_container(engine_cluster, job_containers):
    future = engine_cluster.submit(["sleep", "60"], image=BASE_IMAGE)
    wait_until(lambda: running_container(job_containers, future.uuid), timeout=FINISH,
               what="the job's container to run")
    future.cancel()
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Cancelled", record
    wait_until(lambda: job_containers(future.uuid) == [], timeout=FINISH,
               what="the container to be removed")


SUBMITTER = f"""
import os, sys, cwl_crunch
uuid_file = sys.argv[1]
cluster = cwl_crunch.connect()
future = cluster.submit(["sleep", "60"], image={BASE_IMAGE!r}, cores=0.25, reuse=False)
with open(uuid_file + ".tmp", "w") as f:
    f.write(future.uuid)
os.rename(uuid_file + ".tmp", uuid_file)
future.result()
print("the job ended although its worker was killed", file=sys.stderr)
"""


@pytest.mark.podman
def test_killed_worker_process_fails_the_job_and_its_container_is_removed(
        tmp_path, engine_url, job_containers):
    home = tmp_path / "home"
    uuid_file = tmp_path / "uuid"
    script = tmp_path / "submitter.py"
    script.write_text(SUBMITTER)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CWL_CRUNCH_")}
    env.update(CWL_CRUNCH_HOME=str(home), CWL_CRUNCH_POLL_INTERVAL="0.05",
               CWL_CRUNCH_CONTAINER_ENGINE=engine_url, PYTHONUNBUFFERED="1")
    with (tmp_path / "submitter.log").open("wb") as log:
        submitter = subprocess.Popen([sys.executable, str(script), str(uuid_file)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT)
    uuid = ""
    try:
        uuid = wait_until(lambda: uuid_file.exists() and uuid_file.read_text(),
                          timeout=FINISH, what="the submitter to write the job's uuid")
        assert isinstance(uuid, str)
        container = wait_until(lambda: running_container(job_containers, uuid),
                               timeout=FINISH, what="the job's container to run")
        assert submitter.poll() is None, (tmp_path / "submitter.log").read_text()
        supervisors = processes_with(uuid)  # its plan file is in <work>/<uuid>/
        assert supervisors, "the container's supervisor process"
        os.kill(submitter.pid, signal.SIGKILL)
        submitter.wait()

        # Nobody has looked yet: the supervisor and its container outlive the worker.
        container.reload()
        assert container.status == "running"
        with cwl_crunch.connect(home=home, poll_interval=0.05,
                                container_engine=engine_url) as cluster:
            # Opening the home reaped the job: no waiting needed.
            record = cluster.client.get_job(uuid)
            assert record.state == "Failed", record
            assert "died" in (record.failure_reason or ""), record.failure_reason
            assert str(submitter.pid) in (record.failure_reason or "")
            assert record.output_pdh is None
            assert job_containers(uuid) == []
            wait_until(lambda: not processes_with(uuid), timeout=5,
                       what="the supervisor to be gone")
    finally:
        if submitter.poll() is None:
            submitter.kill()
            submitter.wait()
        if uuid:
            for pid in processes_with(uuid):
                os.kill(pid, signal.SIGKILL)
            for leftover in job_containers(uuid):
                leftover.remove(force=True)


@pytest.mark.podman
def test_standalone_worker_runs_a_container_job(tmp_path, engine_url, monkeypatch,
                                               capsys, job_containers):
    """``cwl-crunch worker UUID`` (how SLURM runs a job) runs images too."""
    home = tmp_path / "home"
    with cwl_crunch.connect(home=home, poll_interval=0.05, max_cores=1,
                            container_engine=engine_url) as cluster:
        # The only core is held: the container job waits for the standalone worker.
        blocker = cluster.submit(["sleep", "60"], cores=1, reuse=False)
        try:
            wait_until(lambda: blocker.record().state == "Running", what="the blocker")
            job = cluster.submit(["sh", "-c", "echo standalone > out/x"], image=BASE_IMAGE,
                                 cores=1)
            assert job.record().state == "Queued"
            monkeypatch.setenv("CWL_CRUNCH_HOME", str(home))
            monkeypatch.setenv("CWL_CRUNCH_CONTAINER_ENGINE", engine_url)
            exit_code = main(["worker", job.uuid])
        finally:
            blocker.cancel()
        record = job.record()
        assert (exit_code, record.state) == (0, "Complete"), (
            record.failure_reason, capsys.readouterr())
        assert cluster.read_text(record.output_pdh, "x") == "standalone\n"
        assert job_containers(record.uuid) == []
        wait_until(blocker.done, what="the blocker to be cancelled")


# -- images and reuse --------------------------------------------------------------------

@pytest.mark.podman
def test_reuse_follows_the_images_content_not_its_name(engine_cluster, images, nonce):
    image_a = images.build(f"FROM {BASE_IMAGE}\nRUN echo A-{nonce} > /etc/marker")
    image_b = images.build(f"FROM {BASE_IMAGE}\nRUN echo B-{nonce} > /etc/marker")
    assert image_a.id != image_b.id
    name, other = f"localhost/crunch-test-{nonce}:v1", f"localhost/crunch-other-{nonce}:x"
    assert image_a.tag(f"localhost/crunch-test-{nonce}", "v1")
    command = ["sh", "-c", "cat /etc/marker > out/marker"]

    first = finished(engine_cluster, engine_cluster.submit(command, image=name).uuid)
    assert first.state == "Complete" and first.reused_job_uuid is None, first
    assert first.image_digest == image_a.id
    assert engine_cluster.read_text(first.output_pdh, "marker") == f"A-{nonce}\n"

    again = finished(engine_cluster, engine_cluster.submit(command, image=name).uuid)
    assert again.reused_job_uuid == first.uuid
    assert again.output_pdh == first.output_pdh

    # The same name now names other content: other work.
    assert image_b.tag(f"localhost/crunch-test-{nonce}", "v1")
    moved = finished(engine_cluster, engine_cluster.submit(command, image=name).uuid)
    assert moved.reused_job_uuid is None, "a re-tagged image must not reuse the old run"
    assert moved.image_digest == image_b.id
    assert moved.state == "Complete"
    assert engine_cluster.read_text(moved.output_pdh, "marker") == f"B-{nonce}\n"

    # The first content under another name: the same work.
    assert image_a.tag(f"localhost/crunch-other-{nonce}", "x")
    renamed = finished(engine_cluster, engine_cluster.submit(command, image=other).uuid)
    assert renamed.image_digest == image_a.id
    assert renamed.reused_job_uuid == first.uuid
    assert renamed.output_pdh == first.output_pdh


@pytest.mark.podman
def test_an_image_id_runs_as_the_same_work_as_its_name(engine_cluster, docker_client):
    command = ["sh", "-c", "echo by-id > out/x"]
    by_name = finished(engine_cluster, engine_cluster.submit(command, image=BASE_IMAGE).uuid)
    image_id = docker_client.images.get(BASE_IMAGE).id
    by_id = finished(engine_cluster, engine_cluster.submit(command, image=image_id).uuid)
    assert by_name.state == "Complete", by_name.failure_reason
    assert by_id.image_digest == by_name.image_digest == image_id
    assert by_id.reused_job_uuid == by_name.uuid


# -- what cannot run ---------------------------------------------------------------------

@pytest.mark.podman
def test_a_missing_image_is_refused_at_submit(engine_cluster, nonce):
    missing = f"localhost/crunch-missing-{nonce}:latest"
    with pytest.raises(SubmitError, match=missing):
        engine_cluster.submit(["true"], image=missing)


@pytest.mark.podman
def test_an_unknown_image_id_is_refused_at_submit(engine_cluster):
    unknown = "sha256:" + "0" * 64
    with pytest.raises(SubmitError, match=unknown):
        engine_cluster.submit(["true"], image=unknown)


@pytest.mark.podman
def test_a_command_the_image_lacks_fails_the_job(engine_cluster, job_containers):
    future = engine_cluster.submit(["no-such-program", "x"], image=BASE_IMAGE)
    record = finished(engine_cluster, future.uuid)

    assert record.state == "Failed", record
    reason = record.failure_reason or ""
    # The supervisor names the image as asked for and the digest it ran, and the reason.
    assert f"container for image {BASE_IMAGE} ({record.image_digest}) could not run" \
        in reason, reason
    assert "no-such-program" in reason, reason
    assert log_text(engine_cluster, record, "container-failure.txt").strip() == reason
    assert record.output_pdh is None
    assert job_containers(record.uuid) == []


def test_an_engine_that_is_down_is_refused_at_submit_with_how_to_get_one(tmp_path):
    url = "unix:///nonexistent/podman.sock"
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05,
                            container_engine=url) as cluster:
        with pytest.raises(SubmitError) as raised:
            cluster.submit(["true"], image=BASE_IMAGE)
        assert url in str(raised.value)
        assert HOW_TO_GET_ONE in str(raised.value)
        # Jobs without an image do not need the engine.
        record = finished(cluster, cluster.submit(["sh", "-c", "echo ok > out/ok"]).uuid)
        assert record.state == "Complete" and record.exit_code == 0, record.failure_reason
        assert cluster.read_text(record.output_pdh, "ok") == "ok\n"


def test_no_engine_configured_is_refused_at_submit(tmp_path):
    with cwl_crunch.connect(home=tmp_path / "home", poll_interval=0.05,
                            container_engine="none") as cluster:
        with pytest.raises(SubmitError, match="no container engine") as raised:
            cluster.submit(["true"], image=BASE_IMAGE)
        assert BASE_IMAGE in str(raised.value)
        assert HOW_TO_GET_ONE in str(raised.value)


@pytest.mark.podman
def test_images_on_the_test_machine(docker_client):
    """The offline images these tests use (a failure here explains the others)."""
    for name in (BASE_IMAGE, "docker.io/bash:4.4"):
        assert docker_client.images.get(name).id


def test_a_container_jobs_leftovers_die_and_its_supervisor_holds_no_secrets(
        engine_cluster, monkeypatch, nonce):
    # The worker's (this test's) environment must not reach the supervisor on the host.
    monkeypatch.setenv("WORKER_SECRET", nonce)
    seconds = f"40.{time.time_ns() % 10**9:09d}"
    supervisors: list[bytes] = []

    def watch() -> bool:
        for pid in processes_with("cwl_crunch.containers.supervise"):
            with contextlib.suppress(OSError):
                supervisors.append(Path(f"/proc/{pid}/environ").read_bytes())
        return bool(supervisors)

    future = engine_cluster.submit(
        ["sh", "-c", f"(setsid sleep {seconds} </dev/null >/dev/null 2>&1 &); sleep 2"],
        image=BASE_IMAGE)
    wait_until(watch, what="the supervisor", timeout=30)
    job = future.result(timeout=60)
    assert job.succeeded
    try:
        assert processes_with(seconds) == []
    finally:
        for pid in processes_with(seconds):
            os.kill(pid, signal.SIGKILL)
    names = {entry.split(b"=", 1)[0] for entry in supervisors[0].split(b"\0") if entry}
    assert names <= {b"PATH", b"HOME", b"LANG", b"CWL_CRUNCH_API_TOKEN"}, names
    assert nonce.encode() not in supervisors[0]
