"""``cwl-crunch token create | list | revoke`` on a home a live ``cwl-crunch server``
process serves: a revoked token is refused by the running server at its next request."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
from polling import wait_until
from server_process import stop as stop_server

from cwl_crunch.model import JobSpec
from cwl_crunch.records import jobs
from cwl_crunch.records.database import Database
from cwl_crunch.records.tokens import create_token

ROW = re.compile(r"^(\S+)  +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)  +(\S+)  +(yes|no)$")


@pytest.fixture
def server_home(tmp_path):
    """The env of commands run on a home's host, and the API URL of its server."""
    home = tmp_path / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CWL_CRUNCH_HOME": str(home)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen([sys.executable, "-m", "cwl_crunch.cli.main", "server",
                                   "--listen", "127.0.0.1:0"], env=env, stderr=sink,
                                  stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        banner = wait_until(lambda: re.search(r"at (http://\S+)", log.read_text()),
                            timeout=30, what="the server's banner")
        yield env, banner[1].rstrip("/.,")
    finally:
        stop_server(server)


def crunch(env, *argv):
    result = subprocess.run([sys.executable, "-m", "cwl_crunch.cli.main", *argv], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    return result.returncode, result.stdout, result.stderr


def status_with(url, token):
    return httpx.get(f"{url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"},
                     timeout=30).status_code


def listed(env):
    code, out, err = crunch(env, "token", "list")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["UUID", "CREATED", "PEER", "REVOKED"]
    return {match[1]: match[4] for match in map(ROW.match, rows) if match} | \
        {"unparsed": [row for row in rows if not ROW.match(row)]}


@pytest.mark.timeout(120)
def test_revoked_token_gets_401_from_the_running_server(server_home):
    env, url = server_home
    tokens = [crunch(env, "token", "create")[1].strip() for _ in range(2)]
    kept, doomed = tokens
    uuids = [token.split("/")[1] for token in tokens]
    assert [status_with(url, token) for token in tokens] == [200, 200]

    shown = listed(env)
    assert shown == {uuids[0]: "no", uuids[1]: "no", "unparsed": []}
    _, out, _ = crunch(env, "token", "list")
    assert not any(token.split("/")[2] in out for token in tokens)  # never the secret

    assert crunch(env, "token", "revoke", uuids[1]) == (0, f"{uuids[1]} revoked\n", "")
    assert status_with(url, doomed) == 401  # at once: the server reads no cache
    assert status_with(url, kept) == 200
    assert listed(env) == {uuids[0]: "no", uuids[1]: "yes", "unparsed": []}
    assert crunch(env, "token", "revoke", uuids[1]) == \
        (0, f"{uuids[1]} was already revoked\n", "")
    assert status_with(url, doomed) == 401


def test_revoke_refuses_unknown_and_job_tokens(tmp_path):
    home = tmp_path / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CWL_CRUNCH_HOME": str(home)}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    code, out, err = crunch(env, "token", "list")
    assert (code, out) == (1, "")
    assert err.startswith("cwl-crunch token: no records database at sqlite:///")
    assert not (home / "records.sqlite").exists()  # not made by looking
    crunch(env, "token", "create")
    database = Database(f"sqlite:///{home / 'records.sqlite'}")
    try:
        with database.writing() as connection:
            job = jobs.insert_job(connection, "local", JobSpec(command=("true",)),
                                  parent_uuid=None, key="k",
                                  output_problem=lambda pdh: None)["uuid"]
            job_token = create_token(connection, "local", job).split("/")[1]
    finally:
        database.close()
    assert job_token not in listed(env)  # persons' tokens only
    code, out, err = crunch(env, "token", "revoke", job_token)
    assert (code, out) == (1, "")
    assert err == (f"cwl-crunch token: token {job_token} is job {job}'s: it ends with the "
                   f"job (cwl-crunch jobs cancel {job})\n")
    assert crunch(env, "token", "revoke", "local-tok-nosuchtoken00000") == \
        (1, "", "cwl-crunch token: no token local-tok-nosuchtoken00000\n")


def test_a_peer_token_is_listed_with_its_peer_and_refused_for_this_cluster(server_home):
    env, _ = server_home
    code, out, err = crunch(env, "token", "create", "--peer", "sitez")
    assert code == 0, err
    uuid = out.strip().split("/")[1]
    _, listing, _ = crunch(env, "token", "list")
    [row] = [line for line in listing.splitlines() if line.startswith(uuid)]
    assert ROW.match(row)[3] == "sitez"
    code, _, err = crunch(env, "token", "create", "--peer", "Not-An-Id")
    assert code == 1 and "5 lowercase letters or digits" in err
