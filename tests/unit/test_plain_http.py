"""The node agent's HTTP endpoints on asyncio's own server: the controller's health bodies and
Prometheus' text format, one request per connection, and clients that misbehave get nothing
but a closed connection. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from node_dns.sinks import plain_http

State = dict[str, bool]


@pytest.fixture
async def server() -> AsyncIterator[tuple[plain_http.Server, State]]:
    state: State = {"ready": False}
    registry = CollectorRegistry()
    Counter("example_things", "Things.", registry=registry).inc(3)

    def live() -> tuple[bool, Mapping[str, Any]]:
        return True, {"dead_tasks": []}

    def ready() -> tuple[bool, Mapping[str, Any]]:
        return state["ready"], {"annotation": "11.0.0.1"}

    started = await plain_http.start("127.0.0.1", 0, live=live, ready=ready, registry=registry)
    yield started, state
    await started.cleanup()


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def parts(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    fields = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, fields, body


async def test_healthz_answers_the_checks_json_and_closes(server: tuple[plain_http.Server, State]) -> None:
    status, fields, body = parts(await exchange(server[0].port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))

    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body) == {"ok": True, "dead_tasks": []}
    assert (fields["content-type"], fields["connection"]) == ("application/json", "close")
    assert int(fields["content-length"]) == len(body)


async def test_readyz_is_503_until_ready(server: tuple[plain_http.Server, State]) -> None:
    port, state = server[0].port, server[1]
    before = parts(await exchange(port, b"GET /readyz HTTP/1.1\r\n\r\n"))
    state["ready"] = True
    after = parts(await exchange(port, b"GET /readyz HTTP/1.1\r\n\r\n"))

    assert before[0] == "HTTP/1.1 503 Service Unavailable"
    assert json.loads(before[2]) == {"ok": False, "annotation": "11.0.0.1"}
    assert after[0] == "HTTP/1.1 200 OK"


async def test_metrics_are_the_registry_in_prometheus_text(server: tuple[plain_http.Server, State]) -> None:
    status, fields, body = parts(await exchange(server[0].port, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"))

    assert status == "HTTP/1.1 200 OK"
    assert fields["content-type"] == CONTENT_TYPE_LATEST
    assert b"example_things_total 3.0" in body


async def test_an_unknown_path_is_404_and_another_method_405(server: tuple[plain_http.Server, State]) -> None:
    port = server[0].port

    assert parts(await exchange(port, b"GET /nope HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 404 Not Found"
    assert (
        parts(await exchange(port, b"POST /healthz HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 405 Method Not Allowed"
    )


async def test_head_has_the_headers_without_the_body(server: tuple[plain_http.Server, State]) -> None:
    status, fields, body = parts(await exchange(server[0].port, b"HEAD /healthz HTTP/1.1\r\n\r\n"))

    assert status == "HTTP/1.1 200 OK" and int(fields["content-length"]) > 0
    assert body == b""


async def test_an_oversized_request_head_gets_no_answer(server: tuple[plain_http.Server, State]) -> None:
    huge = b"GET /healthz HTTP/1.1\r\nX: " + b"a" * (plain_http.MAX_HEAD * 2) + b"\r\n\r\n"

    assert await exchange(server[0].port, huge) == b""


async def test_a_client_that_closes_without_a_request_leaves_the_server_serving(
    server: tuple[plain_http.Server, State],
) -> None:
    port = server[0].port
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()

    assert parts(await exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.1 200 OK"
