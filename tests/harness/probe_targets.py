"""Real listeners for probe tests: TCP, HTTP(S), DNS and NSD on loopback aliases, network namespaces.

Every address is one the test owns: 127.0.0.0/8 (all of it answers on Linux loopback without
configuring aliases) or an address inside a network namespace the test creates and deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.harness.ports import free_port


class TcpTarget:
    """A TCP listener that accepts and closes; ``stop``/``start`` make the port refuse/accept."""

    def __init__(self, host: str, port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        self._server = await asyncio.start_server(accept, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class HttpTarget:
    """A small HTTP(S) server answering every GET with ``status`` (settable while it runs)."""

    def __init__(self, host: str, status: int = 200, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = free_port(host)
        self.status = status
        self.tls = tls
        self.requests: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.requests.append((request.path_qs, request.headers.get("Host", "")))
            return web.Response(status=self.status, text="probe\n")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self.tls, reuse_address=True
        ).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: DnsTarget) -> None:
        self.owner = owner
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or self.transport is None:
            return
        self.owner.clients.add(addr)
        query_id, _flags = struct.unpack_from("!HH", data)
        header = struct.pack("!HHHHHH", query_id, 0x8400 | self.owner.rcode, 1, 0, 0, 0)
        self.transport.sendto(header + data[12:], addr)


class DnsTarget:
    """A tiny authoritative-looking UDP server answering every question with ``rcode``."""

    def __init__(self, host: str, rcode: int = 0) -> None:
        self.host = host
        self.port = free_port(host, udp=True)
        self.rcode = rcode
        self.clients: set[tuple[str, int]] = set()
        """Source addresses questions came from."""
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _DnsProtocol(self), local_addr=(self.host, self.port)
        )

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


@dataclass
class Certificates:
    """A test CA and a server certificate for one IP address and one DNS name."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificates(directory: Path, ip: str, name: str) -> Certificates:
    """openssl: a CA, then a leaf for ``IP:ip`` and ``DNS:name`` signed by it."""
    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.pem"
    ext = directory / "leaf.ext"
    ext.write_text(f"subjectAltName=IP:{ip},DNS:{name}\nbasicConstraints=CA:FALSE\n")
    run = ["openssl"]
    subprocess.run(
        [*run, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=node-dns probe test CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
        check=True, capture_output=True,
    )  # fmt: skip
    return Certificates(ca, cert, key)


class Nsd:
    """NSD serving one small zone on ``host:port`` (the real DNS server of a node)."""

    def __init__(self, workdir: Path, host: str, zone: str = "probe.test") -> None:
        self.workdir = workdir
        self.host = host
        self.port = free_port(host, udp=True)
        self.zone = zone
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        d = self.workdir
        zone_file = d / "zone"
        zone_file.write_text(
            f"$ORIGIN {self.zone}.\n@ 60 IN SOA ns hostmaster 1 60 60 600 60\n@ 60 IN NS ns\n"
            f"ns 60 IN A 127.0.0.1\nprobe 60 IN A 127.0.0.1\n"
        )
        conf = d / "nsd.conf"
        conf.write_text(
            f"""server:
    ip-address: {self.host}@{self.port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {self.zone}
    zonefile: "{zone_file}"
"""
        )
        self._process = subprocess.Popen(
            ["nsd", "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(0.2)
                query = (
                    struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0)
                    + b"\x05probe\x05probe\x04test\x00\x00\x01\x00\x01"
                )
                try:
                    sock.sendto(query, (self.host, self.port))
                    if sock.recv(512):
                        return
                except OSError:
                    time.sleep(0.05)  # NSD still starting: poll again
        raise RuntimeError(f"NSD did not answer on {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop NSD and its forked server processes (it serves from a grandchild)."""
        if self._process is None:
            return
        pid_file = self.workdir / "nsd.pid"
        self._process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), 9)
        self._process = None


def _free_subnet() -> int:
    """A 10.213.X.0/24 no route of this host uses yet (other namespaces of this test run)."""
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    used = {int(m) for m in re.findall(r"10\.213\.(\d+)\.", routes)}
    free = [n for n in range(100, 250) if n not in used]
    return free[secrets.randbelow(len(free))]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Namespace:
    """A network namespace joined to ours by a veth pair: ``host_ip`` here, ``ns_ip`` there.

    ``blackhole()`` makes the namespace drop its replies to us (a route to nowhere), so packets
    to ``ns_ip`` vanish and connects time out. ``cut()`` takes our end of the link down: our own
    path to every address in the namespace is gone, the situation the self-fault guard is for.
    """

    name: str = field(default_factory=lambda: f"ndp-{secrets.token_hex(3)}")
    subnet: int = field(default_factory=_free_subnet)
    extra: int = 0
    """How many more addresses the namespace holds (``ns_ips``)."""

    def __post_init__(self) -> None:
        self.host_if = f"{self.name}-h"[:15]
        self.ns_if = f"{self.name}-n"[:15]
        self.host_ip = f"10.213.{self.subnet}.1"
        self.ns_ip = f"10.213.{self.subnet}.2"
        self.ns_ips = [self.ns_ip] + [f"10.213.{self.subnet}.{3 + n}" for n in range(self.extra)]

    def __enter__(self) -> Namespace:
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            self.exec_ip("link", "set", "lo", "up")
            for address in self.ns_ips:
                self.exec_ip("addr", "add", f"{address}/24", "dev", self.ns_if)
            self.exec_ip("link", "set", self.ns_if, "up")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for half in self._halves():  # a test that failed while cut leaves no route behind
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("route", "del", "blackhole", half)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.host_if)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", self.name)

    def exec_ip(self, *args: str) -> None:
        _ip("netns", "exec", self.name, "ip", *args)

    def blackhole(self) -> None:
        self.exec_ip("route", "add", "blackhole", f"{self.host_ip}/32")

    def _halves(self) -> list[str]:
        return [f"10.213.{self.subnet}.0/25", f"10.213.{self.subnet}.128/25"]

    def cut(self) -> None:
        """Our link down, and blackhole routes so nothing for the namespace leaves the machine."""
        for half in self._halves():
            _ip("route", "add", "blackhole", half)
        _ip("link", "set", self.host_if, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_if, "up")
        for half in self._halves():
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("route", "del", "blackhole", half)

    @contextlib.contextmanager
    def tcp_listeners(self, port: int) -> Iterator[subprocess.Popen[bytes]]:
        """A process in the namespace accepting TCP on ``port`` of every namespace address."""
        code = (
            "import socket,selectors,sys\n"
            "sel=selectors.DefaultSelector()\n"
            f"for a in {self.ns_ips!r}:\n"
            "    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"    s.bind((a,{port})); s.listen(512); sel.register(s,selectors.EVENT_READ)\n"
            "print('ready',flush=True)\n"
            "while True:\n"
            "    for k,_ in sel.select():\n"
            "        c,_=k.fileobj.accept(); c.close()\n"
        )
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "python3", "-c", code], stdout=subprocess.PIPE
        )
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != b"ready":
                raise RuntimeError("listener in the namespace did not start")
            yield process
        finally:
            process.kill()
            process.wait(5)


class ThreadedTarget:
    """A TCP (or HTTP) listener on its own thread, for tests whose main thread blocks in waits.

    ``http_status`` None accepts and closes (a TCP target); a number answers every request with
    that status. ``tls`` wraps accepted connections. ``stop``/``start`` close/reopen the port.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        http_status: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port or free_port(host)
        self.http_status = http_status
        self.tls = tls
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ThreadedTarget:
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(2)
                with contextlib.suppress(OSError, ssl.SSLError):
                    if owner.tls is not None:
                        sock = owner.tls.wrap_socket(sock, server_side=True)
                    if owner.http_status is not None:
                        sock.recv(4096)
                        sock.sendall(f"HTTP/1.1 {owner.http_status} X\r\nContent-Length: 0\r\n\r\n".encode())
                    sock.close()

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(socketserver.ThreadingTCPServer):
            address_family = family
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((self.host, self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
