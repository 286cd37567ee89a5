"""The worker, seen through an embedded cluster: staging, running, output and log collections.

Every job here is a real process in a real job directory; what the worker did is read
back from the records and the stored collections.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import time
import uuid
from pathlib import Path

import pytest
from procs import processes_with, sleeping

from cwl_crunch import CollectionMount, JobSpec, LiteralMount
from cwl_crunch.errors import CorruptBlock

WAIT = 30  # seconds: a bug must fail a test, not hang it


def run(client, command, **fields):
    """Submit a job and wait for its end; returns the final record."""
    record = client.submit(JobSpec(command=tuple(command), **fields))
    final = client.wait([record.uuid], timeout=WAIT)[0]
    assert final.finished, f"job still {final.state} after {WAIT} s"
    return final


def text(client, pdh, path):
    return b"".join(client.read_file(pdh, path)).decode()


def files(client, pdh):
    return sorted(e.path for e in client.list_collection(pdh) if e.kind == "file")


def gone_soon(path, timeout=5.0):
    """Whether ``path`` disappears within ``timeout`` (the worker cleans up after finishing)."""
    deadline = time.monotonic() + timeout
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def unique_seconds(base):
    """A sleep duration no other process uses, to find that sleep in /proc."""
    return f"{base}.{uuid.uuid4().int % 10**9:09d}"


# A job that runs ---------------------------------------------------------------------

def test_exit_code_output_and_logs(client):
    job = run(client, ["sh", "-c",
                       "echo to-stdout; echo to-stderr >&2; mkdir -p out/sub; "
                       "printf one > out/a.txt; printf two > out/sub/b.txt"])
    assert job.state == "Complete"
    assert job.exit_code == 0
    assert job.succeeded
    assert job.failure_reason is None
    assert job.started_at is not None and job.finished_at is not None
    assert job.created_at <= job.started_at <= job.finished_at
    assert files(client, job.output_pdh) == ["a.txt", "sub/b.txt"]
    assert text(client, job.output_pdh, "a.txt") == "one"
    assert text(client, job.output_pdh, "sub/b.txt") == "two"
    assert files(client, job.log_pdh) == ["stderr.txt", "stdout.txt", "worker.txt"]
    assert text(client, job.log_pdh, "stdout.txt") == "to-stdout\n"
    assert text(client, job.log_pdh, "stderr.txt") == "to-stderr\n"
    assert job.uuid in text(client, job.log_pdh, "worker.txt")


def test_empty_output_dir_is_an_empty_collection(client):
    job = run(client, ["true"])
    assert job.succeeded
    assert client.list_collection(job.output_pdh) == []


def test_stdout_redirect_lands_in_output_and_log(client):
    job = run(client, ["echo", "redirected text"], stdout="out/x.txt")
    assert job.succeeded
    assert files(client, job.output_pdh) == ["x.txt"]
    assert text(client, job.output_pdh, "x.txt") == "redirected text\n"
    assert text(client, job.log_pdh, "stdout.txt") == "redirected text\n"


def test_stderr_redirect_lands_in_output_and_log(client):
    job = run(client, ["sh", "-c", "echo oops >&2"], stderr="out/err.txt")
    assert job.succeeded
    assert text(client, job.output_pdh, "err.txt") == "oops\n"
    assert text(client, job.log_pdh, "stderr.txt") == "oops\n"


def test_stdin_from_a_mount(client, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("cherry\napple\nbanana\n")
    pdh = client.put_paths([data])
    job = run(client, ["sort"], stdin="in/data.txt", stdout="out/sorted.txt",
              mounts={"in": CollectionMount(pdh)})
    assert job.succeeded
    assert text(client, job.output_pdh, "sorted.txt") == "apple\nbanana\ncherry\n"


def test_stdin_from_a_literal_mount(client):
    job = run(client, ["wc", "-l"], stdin="lines.txt", stdout="out/count.txt",
              mounts={"lines.txt": LiteralMount("a\nb\nc\n")})
    assert job.succeeded
    assert text(client, job.output_pdh, "count.txt").strip() == "3"


def test_no_stdin_means_empty_input(client):
    job = run(client, ["wc", "-c"], stdout="out/n.txt", time_limit=10)
    assert job.succeeded
    assert text(client, job.output_pdh, "n.txt").strip() == "0"


def test_environment_variables_reach_the_command(client):
    job = run(client, ["sh", "-c", 'printf "%s|%s" "$GREETING" "$OTHER" > out/env.txt'],
              environment={"GREETING": "hello world", "OTHER": "x=y"})
    assert text(client, job.output_pdh, "env.txt") == "hello world|x=y"


def test_job_environment_is_not_the_callers(client, monkeypatch):
    monkeypatch.setenv("SECRET_OF_THE_TEST_PROCESS", "leaked")
    job = run(client, ["sh", "-c", 'printf "[%s]" "$SECRET_OF_THE_TEST_PROCESS" > out/e'])
    assert text(client, job.output_pdh, "e") == "[]"


def test_default_cwd_is_the_job_dir(client):
    job = run(client, ["sh", "-c", "pwd > out/pwd.txt; ls -a > out/ls.txt"],
              mounts={"input.txt": LiteralMount("x")})
    cwd = text(client, job.output_pdh, "pwd.txt").strip()
    assert Path(cwd).is_absolute()
    listing = text(client, job.output_pdh, "ls.txt").split()
    assert "input.txt" in listing
    assert "out" in listing
    # The job dir is fresh and private to the job: it goes away after the job ends.
    assert gone_soon(Path(cwd))


def test_cwd_relative_to_the_job_dir(client):
    job = run(client, ["sh", "-c", "pwd > ../out/pwd.txt; cat ../in.txt > ../out/seen.txt"],
              cwd="work", mounts={"in.txt": LiteralMount("from above")})
    assert job.succeeded
    assert text(client, job.output_pdh, "pwd.txt").strip().endswith("/work")
    assert text(client, job.output_pdh, "seen.txt") == "from above"


def test_home_and_tmpdir_exist_and_are_writable(client):
    script = (
        'for d in "$HOME" "$TMPDIR"; do '
        '  test -n "$d" && test -d "$d" && echo hi > "$d/probe" && test -s "$d/probe" '
        '  || { echo "bad: [$d]"; exit 9; }; '
        "done; "
        'echo "$HOME" > out/home; echo "$TMPDIR" > out/tmp'
    )
    job = run(client, ["sh", "-c", script])
    assert job.exit_code == 0, text(client, job.log_pdh, "stdout.txt")
    home = text(client, job.output_pdh, "home").strip()
    tmp = text(client, job.output_pdh, "tmp").strip()
    assert home != tmp
    assert gone_soon(Path(tmp))  # cleaned up with the job


def test_output_path_other_than_out(client):
    job = run(client, ["sh", "-c", "echo r > results/r.txt; mkdir other; echo o > other/o"],
              output_path="results")
    assert job.succeeded, text(client, job.log_pdh, "stderr.txt")
    assert files(client, job.output_pdh) == ["r.txt"]


def test_output_with_many_files_and_equal_content(client):
    job = run(client, ["sh", "-c",
                       "for i in $(seq 1 50); do echo same > out/f$i.txt; done"])
    assert job.succeeded
    assert len(files(client, job.output_pdh)) == 50
    assert text(client, job.output_pdh, "f37.txt") == "same\n"


# Mounts --------------------------------------------------------------------------------

@pytest.fixture
def collection(client, tmp_path):
    """A stored collection: top.txt and dir/inner.txt."""
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "top.txt").write_text("top content\n")
    (src / "dir" / "inner.txt").write_text("inner content\n")
    return client.put_paths([src / "top.txt", src / "dir"])


def test_whole_collection_mount(client, collection):
    job = run(client, ["sh", "-c",
                       "cat in/top.txt in/dir/inner.txt > out/both.txt; "
                       "find in -type f | sort > out/found.txt"],
              mounts={"in": CollectionMount(collection)})
    assert job.succeeded
    assert text(client, job.output_pdh, "both.txt") == "top content\ninner content\n"
    assert text(client, job.output_pdh, "found.txt").split() == \
        ["in/dir/inner.txt", "in/top.txt"]


def test_single_file_mount(client, collection):
    job = run(client, ["sh", "-c", "test -f data/one.txt && cat data/one.txt > out/copy"],
              mounts={"data/one.txt": CollectionMount(collection, path="dir/inner.txt")})
    assert job.succeeded, text(client, job.log_pdh, "stderr.txt")
    assert text(client, job.output_pdh, "copy") == "inner content\n"


def test_subdirectory_mount(client, collection):
    job = run(client, ["sh", "-c", "ls d > out/ls"],
              mounts={"d": CollectionMount(collection, path="dir")})
    assert text(client, job.output_pdh, "ls").split() == ["inner.txt"]


def test_mount_inside_the_output_dir_is_part_of_the_output(client, collection):
    job = run(client, ["true"], mounts={"out/kept.txt": CollectionMount(collection, "top.txt")})
    assert job.succeeded
    assert text(client, job.output_pdh, "kept.txt") == "top content\n"


def test_read_only_mount_modes(client, collection):
    job = run(client, ["sh", "-c", "stat -c '%a %n' in/top.txt in/dir/inner.txt > out/modes"],
              mounts={"in": CollectionMount(collection)})
    for line in text(client, job.output_pdh, "modes").splitlines():
        mode = int(line.split()[0], 8)
        assert mode & 0o222 == 0, line


def test_job_writing_to_a_read_only_input_leaves_the_stored_collection_intact(
        client, collection):
    job = run(client, ["sh", "-c",
                       "chmod u+w in/top.txt; echo tampered >> in/top.txt; "
                       "printf x > in/dir/inner.txt; true"],
              mounts={"in": CollectionMount(collection)})
    assert job.finished
    assert text(client, collection, "top.txt") == "top content\n"
    assert text(client, collection, "dir/inner.txt") == "inner content\n"


def test_without_mount_namespaces_a_job_writing_into_its_input_fails_and_it_is_reported(
        client, collection, monkeypatch, request):
    # Where read-only bind mounts are not available, the worker still notices.
    monkeypatch.setattr("cwl_crunch.worker.process.namespaces_available", lambda: False)
    monkeypatch.setattr("cwl_crunch.worker.job_worker.isolation_problem",
                        lambda: "no unshare(1) here (test)")
    job = run(client, ["sh", "-c", "chmod u+w in/top.txt; echo tampered >> in/top.txt"],
              mounts={"in": CollectionMount(collection)})
    assert job.state == "Failed"
    if request.node.callspec.params["cluster"] == "http":
        # A server's worker runs nothing unisolated unless its config says so.
        assert job.failure_reason.startswith("this worker cannot isolate jobs")
        return
    assert "in/top.txt" in job.failure_reason
    assert "read-only input" in job.failure_reason
    # The damaged block is never handed out as if it were the stored content.
    with pytest.raises(CorruptBlock) as raised:
        text(client, collection, "top.txt")
    assert collection in str(raised.value)


def test_job_replacing_a_read_only_input_leaves_the_stored_collection_intact(
        client, collection):
    # Replacing (new inode) rather than writing in place must never reach the store.
    job = run(client, ["sh", "-c", "rm -f in/top.txt; echo new > in/top.txt"],
              mounts={"in": CollectionMount(collection)})
    assert job.finished
    assert text(client, collection, "top.txt") == "top content\n"
    again = run(client, ["cat", "in/top.txt"], stdout="out/seen.txt",
                mounts={"in": CollectionMount(collection)})
    assert text(client, again.output_pdh, "seen.txt") == "top content\n"


def test_writable_mount_is_a_private_copy(client, collection):
    job = run(client, ["sh", "-c",
                       "echo more >> in/top.txt && rm in/dir/inner.txt && "
                       "echo added > in/new.txt && cat in/top.txt > out/after.txt"],
              mounts={"in": CollectionMount(collection, writable=True)})
    assert job.exit_code == 0, text(client, job.log_pdh, "stderr.txt")
    assert text(client, job.output_pdh, "after.txt") == "top content\nmore\n"
    assert files(client, collection) == ["dir/inner.txt", "top.txt"]
    assert text(client, collection, "top.txt") == "top content\n"
    assert text(client, collection, "dir/inner.txt") == "inner content\n"
    # A later read-only job still sees the original content.
    again = run(client, ["cat", "in/top.txt"], stdout="out/seen.txt",
                mounts={"in": CollectionMount(collection)})
    assert text(client, again.output_pdh, "seen.txt") == "top content\n"


def test_writable_single_file_mount(client, collection):
    job = run(client, ["sh", "-c", "echo x >> f.txt && cat f.txt > out/f.txt"],
              mounts={"f.txt": CollectionMount(collection, "top.txt", writable=True)})
    assert job.exit_code == 0
    assert text(client, job.output_pdh, "f.txt") == "top content\nx\n"
    assert text(client, collection, "top.txt") == "top content\n"


def test_literal_mount_content(client):
    content = "line one\nüñï©ødé\n"
    job = run(client, ["sh", "-c", "cat conf/settings.txt > out/copy; "
                       "stat -c %a conf/settings.txt > out/mode"],
              mounts={"conf/settings.txt": LiteralMount(content)})
    assert job.succeeded
    assert text(client, job.output_pdh, "copy") == content
    assert int(text(client, job.output_pdh, "mode"), 8) & 0o333 == 0


def test_literal_mount_executable(client):
    script = "#!/bin/sh\necho script ran with \"$1\"\n"
    job = run(client, ["./run.sh", "arg"], stdout="out/result.txt",
              mounts={"run.sh": LiteralMount(script, executable=True)})
    assert job.succeeded, job.failure_reason
    assert text(client, job.output_pdh, "result.txt") == "script ran with arg\n"


def test_literal_mount_not_executable_cannot_run(client):
    job = run(client, ["./run.sh"], mounts={"run.sh": LiteralMount("#!/bin/sh\necho no\n")},
              time_limit=10)
    # As root, exec still needs an x bit: the job must end, Failed, naming the program.
    assert job.state == "Failed"
    assert "run.sh" in job.failure_reason


def test_literal_mount_writable(client):
    job = run(client, ["sh", "-c", "echo more >> notes.txt && cat notes.txt > out/n"],
              mounts={"notes.txt": LiteralMount("first\n", writable=True)})
    assert job.exit_code == 0
    assert text(client, job.output_pdh, "n") == "first\nmore\n"


# Failures ------------------------------------------------------------------------------

def test_missing_executable_fails_with_its_name(client):
    name = f"no-such-program-{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    job = run(client, [name, "arg"])
    assert time.monotonic() - start < 10
    assert job.state == "Failed"
    assert name in job.failure_reason
    assert job.log_pdh is not None
    assert name in text(client, job.log_pdh, "worker.txt")


def test_nonzero_exit_is_complete_with_that_code(client):
    job = run(client, ["sh", "-c", "echo partial > out/p.txt; echo why >&2; exit 3"])
    assert job.state == "Complete"
    assert job.exit_code == 3
    assert not job.succeeded
    assert text(client, job.log_pdh, "stderr.txt") == "why\n"


def test_killed_by_a_signal_is_not_success(client):
    job = run(client, ["sh", "-c", "kill -KILL $$"])
    assert job.finished
    assert not job.succeeded
    assert job.exit_code != 0


def submit_and_see(client, seconds, command, **fields):
    """Submit, wait until its ``sleep <seconds>`` runs; returns the record."""
    record = client.submit(JobSpec(command=tuple(command), **fields))
    deadline = time.monotonic() + 10
    while not sleeping(seconds):
        assert time.monotonic() < deadline, "the job's sleep never started"
        time.sleep(0.02)
    return record


def test_time_limit_kills_the_command(client):
    seconds = unique_seconds(30)
    start = time.monotonic()
    record = submit_and_see(client, seconds, ["sleep", seconds], time_limit=1)
    job = client.wait([record.uuid], timeout=WAIT)[0]
    elapsed = time.monotonic() - start
    assert job.state == "Failed"
    assert "time limit" in job.failure_reason
    assert 0.9 <= elapsed < 10
    assert processes_with(seconds) == []
    assert job.log_pdh is not None
    assert "time limit" in text(client, job.log_pdh, "worker.txt")


def test_time_limit_kills_the_whole_process_group(client):
    a, b = unique_seconds(31), unique_seconds(32)
    record = submit_and_see(client, b, ["sh", "-c", f"sleep {a} & sleep {b}"], time_limit=1)
    assert sleeping(a)
    job = client.wait([record.uuid], timeout=WAIT)[0]
    assert job.state == "Failed"
    assert "time limit" in job.failure_reason
    deadline = time.monotonic() + 5
    while (processes_with(a) or processes_with(b)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(a) == []
    assert processes_with(b) == []


def test_time_limit_not_reached(client):
    job = run(client, ["sh", "-c", "sleep 0.2; echo done > out/d"], time_limit=5)
    assert job.succeeded
    assert text(client, job.output_pdh, "d") == "done\n"


def test_processes_left_behind_by_a_finished_job_are_stopped(client):
    seconds = unique_seconds(65)
    job = run(client, ["sh", "-c", f"sleep {seconds} >/dev/null 2>&1 &"])
    assert job.succeeded
    try:
        deadline = time.monotonic() + 2
        while sleeping(seconds) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sleeping(seconds) == []
    finally:
        for pid in sleeping(seconds):
            os.kill(pid, signal.SIGKILL)


def test_late_write_by_a_left_behind_process_does_not_change_the_output(client):
    job = run(client, ["sh", "-c",
                       "exec 3>>out/f.txt; echo early >&3; (sleep 0.3; echo late >&3) &"])
    assert job.succeeded
    assert text(client, job.output_pdh, "f.txt") == "early\n"
    time.sleep(0.8)
    assert text(client, job.output_pdh, "f.txt") == "early\n"


def test_missing_stdin_file_fails_the_job(client):
    job = run(client, ["cat"], stdin="nothing-here.txt", time_limit=10)
    assert job.state == "Failed"
    assert job.failure_reason


def test_one_failure_does_not_stop_the_next_job(client):
    bad = run(client, [f"missing-{uuid.uuid4().hex}"])
    good = run(client, ["sh", "-c", "echo ok > out/ok"])
    assert bad.state == "Failed"
    assert good.succeeded


def test_job_can_run_python(client):
    code = "import os, sys; open('out/v.txt', 'w').write(sys.argv[1] + os.environ['X'])"
    job = run(client, [sys.executable, "-c", code, "arg-"], environment={"X": "env"})
    assert job.succeeded, text(client, job.log_pdh, "stderr.txt")
    assert text(client, job.output_pdh, "v.txt") == "arg-env"


def test_output_files_keep_executable_bit(client, tmp_path):
    job = run(client, ["sh", "-c", "printf '#!/bin/sh\\n' > out/tool; chmod +x out/tool; "
                       "echo data > out/plain"])
    dest = tmp_path / "exported"
    client.get_collection(job.output_pdh, "", dest)
    assert os.stat(dest / "tool").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "plain").st_mode & stat.S_IXUSR


def test_output_links_out_of_the_job_dir_are_not_stored(client, tmp_path):
    secret = tmp_path / "host-file.txt"
    secret.write_text("not the job's")
    record = run(client, ["sh", "-c", f"echo mine > out/mine.txt && ln -s {secret} out/leak "
                                      "&& ln -s mine.txt out/alias"])
    assert record.succeeded
    assert files(client, record.output_pdh) == ["alias", "mine.txt"]
    assert text(client, record.output_pdh, "alias") == "mine\n"


def test_output_names_as_long_as_the_filesystem_allows(cluster, tmp_path):
    longest = "n" * 251 + ".txt"  # 255 bytes: NAME_MAX on ext4
    assert len(longest) == os.pathconf(tmp_path, "PC_NAME_MAX")
    future = cluster.submit(
        ["sh", "-c", f"mkdir out/{longest}; echo deep > out/{longest}/{longest}"])
    record = future.result(timeout=WAIT)
    assert files(cluster.client, record.output_pdh) == [f"{longest}/{longest}"]
    dest = tmp_path / "copy"
    cluster.client.get_collection(record.output_pdh, "", dest)
    assert (dest / longest / longest).read_text() == "deep\n"
    assert os.listdir(dest / longest) == [longest]
