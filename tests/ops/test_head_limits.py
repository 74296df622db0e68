"""Bounds on a request's head (header_limit.py): `billing-api serve` stops reading a head over
`max_request_head_bytes` (uvicorn's h11 protocol with a bounded buffer), and the app refuses more than
`max_request_headers` fields or more header bytes; each answers 431 problem+json `headers_too_large`, and a
normal request is served as before."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading

import httpx

from tests.helpers import assert_problem, wait_until_answering
from tests.ops.test_serve import serve_env
from tests.support.smtp import free_port

IO_GUARD_SECONDS = 60  # against a server that never answers, not a speed check


def _exchange(port: int, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send a request head over a raw socket and read the answer until the server closes. The head is sent from a
    thread, since the server answers and closes without reading all of a long one (the sender then sees a reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_GUARD_SECONDS) as sock:
        def send() -> None:
            try:
                sock.sendall(head)
            except OSError:  # the server closed before reading it all: what the bound is for
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except ConnectionResetError:
            pass
        sender.join(IO_GUARD_SECONDS)
    head_part, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head_part.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _request(*headers: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + b"".join(headers) + b"\r\n"


def _assert_431(answer: tuple[int, dict[str, str], bytes]) -> dict:
    status, headers, body = answer
    assert status == 431, answer
    assert headers["content-type"] == "application/problem+json", headers
    problem = json.loads(body)
    assert problem["status"] == 431 and problem["code"] == "headers_too_large", problem
    return problem


async def test_serve_refuses_huge_and_numerous_headers_with_431_and_serves_normal_requests(live_engine, tmp_path):
    port = free_port()
    env = serve_env(live_engine, tmp_path, "warning")
    for name in ("BILLING_API_MAX_REQUEST_HEAD_BYTES", "BILLING_API_MAX_REQUEST_HEADERS"):
        env.pop(name, None)  # the defaults: 65536 bytes, 100 fields
    stderr = tmp_path / "stderr.log"
    with stderr.open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "billing_api", "serve", "--port", str(port)], env=env,
                                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_answering(http, "/healthz", stderr.read_text)

        async def exchange(head: bytes):
            return await asyncio.to_thread(_exchange, port, head)

        # Refused by the server while it arrives: an 8 MB header, and 20,000 headers (240 KB).
        eight_mb = await exchange(_request(b"X-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n"))
        assert "65536 bytes" in _assert_431(eight_mb)["detail"]
        many = await exchange(_request(*(b"X-H-%d: v\r\n" % n for n in range(20_000))))
        _assert_431(many)
        # Refused by the app: 101 small header fields fit in the server's bound, not in the count.
        count = await exchange(_request(*(b"X-H-%d: v\r\n" % n for n in range(99))))
        assert "more than 100 header fields" in _assert_431(count)["detail"]
        assert count[1]["x-request-id"]  # answered inside the app: request id, security headers
        # Within both bounds, over the same server: 100 fields and a head of 62 KB are served.
        fits = await exchange(_request(*(b"X-H-%d: v\r\n" % n for n in range(97)),
                                       b"X-Big: " + b"a" * (60 * 1024) + b"\r\n"))
        assert fits[0] == 200, fits
        # Not HTTP at all: a 400 problem+json, where uvicorn alone answers in plain text.
        status, headers, body = await exchange(b"NONSENSE\r\n\r\n")
        assert status == 400 and headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "bad_request"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=60)


async def test_the_app_refuses_more_header_fields_or_bytes_than_its_bounds(client, settings):
    sent_anyway = len(client.build_request("GET", "/healthz").headers)  # host, accept, user-agent...
    room = settings.max_request_headers - sent_anyway

    def fields(n: int) -> list[tuple[str, str]]:
        return [(f"x-h-{i}", "v") for i in range(n)]

    assert (await client.get("/healthz", headers=fields(room))).status_code == 200
    problem = assert_problem(await client.get("/healthz", headers=fields(room + 1)), 431, "headers_too_large")
    assert problem["detail"] == f"The request has more than {settings.max_request_headers} header fields."
    # Bytes: names and values together, here in one field (no server bound in front of the app in this test).
    base = sum(len(k) + len(v) for k, v in client.build_request("GET", "/healthz").headers.raw)
    fill = settings.max_request_head_bytes - base - len("x-big")
    assert (await client.get("/healthz", headers={"x-big": "a" * fill})).status_code == 200
    assert_problem(await client.get("/healthz", headers={"x-big": "a" * (fill + 1)}), 431, "headers_too_large")
    assert_problem(await client.get("/v1/me", headers={"x-big": "a" * 8 * 1024 * 1024}), 431, "headers_too_large")
