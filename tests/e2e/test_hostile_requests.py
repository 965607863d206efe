"""Issue #9 items 2 and 3 over real TCP against the four service processes of the real stack: a 50 MB body
without a token is answered 413 before it is sent and leaves each process's memory flat, and a keep-alive
connection keeps working after refused requests (an unhandled error used to reset it)."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.localstack import SERVICES, Stack
from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def address(stack: Stack, service: str) -> tuple[str, int]:
    url = urlsplit(stack.url(service))
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length, read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_50_mb_json_body_without_a_token_is_413_before_it_is_sent_and_memory_stays_flat(
        stack: Stack, world: World, service: str) -> None:
    pid = stack.procs[service].pid
    host, port = address(stack, service)
    before = rss_bytes(pid)
    with socket.create_connection((host, port), timeout=30) as sock:
        # Only the headers and the first kilobyte: the answer comes without the other 50 MB.
        start = b"[" + b"0," * 512
        sock.sendall(b"POST /api/v1/claims HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {50 * MiB}\r\n\r\n".encode() + start)
        status, headers, body = read_response(sock)
        assert status == 413 and json.loads(body)["code"] == "body_too_large"
        assert headers["content-type"] == "application/problem+json"
        # The attacker sends the rest anyway, on the same connection: dropped as it comes, then the
        # connection serves the next request.
        filler = b"0," * (MiB // 2)
        for _ in range(49):
            sock.sendall(filler)
        sock.sendall(filler[len(start):])
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = read_response(sock)
        assert status == 200 and json.loads(body)["status"] == "ok"
    after = rss_bytes(pid)
    # Before: the claims service grew by 1.4 GiB parsing such a body before answering 401.
    assert after - before < 20 * MiB, f"{service}: RSS {before / MiB:.1f} MiB -> {after / MiB:.1f} MiB"


def test_a_keep_alive_connection_keeps_working_after_refused_requests(stack: Stack, world: World) -> None:
    host, port = address(stack, "claims")
    auth = {"Authorization": f"Bearer {world.admin.token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(host, port, timeout=30)
    attacks = [
        ("GET", "/api/v1/coverages?certno=5301%00", None, {"Authorization": auth["Authorization"]}, 422),
        ("POST", "/api/v1/settlements", b"[" * 100_000 + b"]" * 100_000, auth, 422),
        ("POST", "/api/v1/settlements", b'[{"setl_id": "S-NaN", "medfee_sumamt": NaN}]', auth, 422),
        ("POST", f"/api/v1/calendar/{2030}", json.dumps({"holidays": [{"date": "2030-01-01"}] * 2}).encode(),
         auth, 422),
        ("POST", "/api/v1/claims", b"{" + b" " * (2 * MiB) + b"}", auth, 413),
        ("GET", "/healthz", None, {}, 200),
    ]
    conn.connect()
    first = conn.sock
    for method, path, body, headers, expected in attacks:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        assert response.status == expected, (path, payload[:300])
        assert response.getheader("connection", "").lower() != "close"
        assert conn.sock is first, f"the connection was replaced after {method} {path}"
    conn.close()
