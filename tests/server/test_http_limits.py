"""Requests over the server's size limits, and filters naming nothing that can exist,
as a client sees them from a real ``cwl-crunch server`` process over a real socket: a
status that says what was wrong, a JSON body, and no connection reset (the server reads
what was sent before it answers). Each case was once found by schemathesis or by hand
(issue 12, finding 10): a 180 KB query string made CI fail with ``Connection reset by
peer`` on a machine where the generated cases differed."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_process import ServerProcess

from cwl_crunch.server.http_limits import MAX_HEADERS, MAX_TARGET

SERVER_BOUND = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("limits")
    with ServerProcess(root / "home", root / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def token(server: ServerProcess) -> str:
    return server.create_token()


def refusal(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["error"] and all(word in body["detail"] for word in words), body
    return body


CASES = {
    "query string of 180 KB": ("/api/v1/jobs?state=" + "Q" * 180_000, b"", 414, "URI"),
    "path of 200 KB": ("/api/v1/jobs/" + "a" * 200_000, b"", 414, "URI"),
    "header of 1 MB": ("/api/v1/jobs", b"X-Big: " + b"h" * 1_000_000 + b"\r\n", 431, "header"),
    "query string just over the limit": ("/api/v1/jobs?limit=1&x=" + "q" * MAX_TARGET, b"",
                                         414, "URI"),
    "headers just over the limit": ("/api/v1/jobs", b"X-Big: " + b"h" * MAX_HEADERS + b"\r\n",
                                    431, "header"),
}


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send all of ``request``, then read the whole answer up to the server's orderly end
    of stream: a reset raises ConnectionResetError (or BrokenPipeError) here."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    assert len(body) == int(headers["content-length"]), (headers, body)
    return int(status_line.split()[1]), headers, body


@pytest.mark.timeout(SERVER_BOUND)
@pytest.mark.parametrize("case", sorted(CASES))
def test_an_oversized_request_gets_its_status_and_a_json_message(server, token, case):
    target, more_headers, status, word = CASES[case]
    request = (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token}\r\n").encode() + more_headers + b"\r\n"
    got, headers, body = exchange(server.port, request)
    assert got == status, (got, headers, body[:300])
    assert headers["content-type"] == "application/json", headers
    message = json.loads(body)
    assert message["error"] == "HTTPError" and word in message["detail"], message
    # The server still answers.
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        assert http.get("/api/v1/jobs").status_code == 200


@pytest.mark.timeout(SERVER_BOUND)
def test_httpx_sending_a_1_mb_header_reads_the_431(server, token):
    """A client that sends its whole request before reading (httpx, requests): a reset
    would be an httpx.ReadError or RemoteProtocolError here."""
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        refusal(http.get("/api/v1/jobs", headers={"X-Big": "h" * 1_000_000}), 431, "header")


@pytest.mark.parametrize(("query", "parameter"), [
    ({"state": "Bogus"}, "state"),
    ({"state": ["Queued", "queued"]}, "state"),
    ({"parent": "nonexistent"}, "parent"),
    ({"parent": "local-job-TOOSHORT"}, "parent"),
])
def test_a_filter_value_that_names_nothing_possible_is_a_422(server, token, query, parameter):
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        body = refusal(http.get("/jobs", params=query), 422, parameter)
    assert body["error"] == "RequestValidationError"


def test_a_well_formed_parent_with_no_children_lists_nothing(server, token):
    """As Arvados answers a filter that matches nothing: an empty list, not a 404 (a
    list is not a lookup of its parent; a job's own token still gets the 404)."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        response = http.get("/jobs", params={"parent": "local-job-000000000000000"})
    assert response.status_code == 200 and response.json() == []
