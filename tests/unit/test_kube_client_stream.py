"""What a real apiserver cannot be made to do on demand, against an HTTP server on loopback: a
watch stream cut at awkward places (mid-event, several events per chunk, no final newline), an
ERROR event after good ones, and a 401 answered by reading the credentials again -- repeating
the request once only if they changed. The client under test is the real one; the live
behaviour is in tests/integration/test_kube_client.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from node_dns import kube


class Server:
    """Chunks to stream on GET /watch; tokens seen on GET /thing, answered 401 unless accepted."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.seen_tokens: list[str] = []
        self.accepted = "good"
        self.url = ""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for chunk in state.chunks:
            await response.write(chunk)
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    async def thing(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        state.seen_tokens.append(token)
        if token != state.accepted:
            return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401)
        return web.json_response({"kind": "Thing"})

    app = web.Application()
    app.router.add_get("/watch", stream)
    app.router.add_get("/thing", thing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


def kubeconfig(folder: Path, server: str) -> Path:
    token = folder / "token"
    if not token.exists():
        token.write_text("stale")
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
    }
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def event(kind: str, name: str, version: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": version}}}


async def collect(client: kube.Client) -> list[tuple[str, str | None]]:
    seen = []
    async for item in client.watch("/watch"):
        seen.append((item.type, item.resource_version))
    return seen


async def test_watch_events_cut_anywhere_arrive_whole_and_in_order(server: Server, tmp_path: Path) -> None:
    text = (
        b"".join(
            json.dumps(e).encode() + b"\n"
            for e in (event("ADDED", "a", "1"), event("MODIFIED", "a", "2"), event("BOOKMARK", "", "3"))
        )
        + json.dumps(event("DELETED", "a", "4")).encode()
    )  # the last one without a newline
    server.chunks = [text[:7], text[7:60], text[60:61], text[61:]]
    client = kube.Client(kube.CredentialsLoader(str(kubeconfig(tmp_path, server.url))))
    try:
        seen = await collect(client)
    finally:
        await client.close()

    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("BOOKMARK", "3"), ("DELETED", "4")]


async def test_an_error_event_after_good_ones_raises_gone_for_410(server: Server, tmp_path: Path) -> None:
    expired = {
        "type": "ERROR",
        "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
    }
    server.chunks = [
        json.dumps(event("ADDED", "a", "1")).encode() + b"\n",
        json.dumps(expired).encode() + b"\n",
    ]
    client = kube.Client(kube.CredentialsLoader(str(kubeconfig(tmp_path, server.url))))
    seen: list[str] = []
    try:
        with pytest.raises(kube.Gone, match="410 Expired: too old"):
            async for item in client.watch("/watch"):
                seen.append(item.type)
    finally:
        await client.close()

    assert seen == ["ADDED"]


async def test_a_401_with_unchanged_credentials_is_not_repeated(server: Server, tmp_path: Path) -> None:
    client = kube.Client(kube.CredentialsLoader(str(kubeconfig(tmp_path, server.url))))
    try:
        with pytest.raises(kube.Unauthorized):
            await client.get("/thing")
    finally:
        await client.close()

    assert server.seen_tokens == ["stale"]


async def test_a_401_reads_the_token_file_again_and_repeats_once_with_the_new_token(
    server: Server, tmp_path: Path
) -> None:
    client = kube.Client(kube.CredentialsLoader(str(kubeconfig(tmp_path, server.url))))
    try:
        await client.loader.load()
        (tmp_path / "token").write_text("good")  # rotated; the loader's copy is not stale yet
        thing = await client.get("/thing")
    finally:
        await client.close()

    assert thing == {"kind": "Thing"}
    assert server.seen_tokens == ["stale", "good"]
