"""The render process: ``python -m node_dns.sinks.hooks.child <fd> <nice>``, started by node-dns.

It reads messages from the serving process (:mod:`node_dns.sinks.hooks.process`) in order:

- ``("start", specs)``: compile the hooks (first message);
- ``("update", Update)``: change the copy of the served state;
- ``("render", id, hook, spawn, rehash)``: render now, write if the bytes changed, start the
  command if ``spawn``; reply :class:`~node_dns.sinks.hooks.view.Rendered`;
- ``("start_command", id, hook)``: start the command; reply its pid or an Outcome;
- ``("finish", id, hook)``: wait for the command started last; reply its Outcome;
- ``("cancel", hook)``: kill that hook's command (no reply).

Replies are ``("reply", id, value)``. Besides, ``("pid", hook, pid)`` goes out the moment a
command starts and ``("ended", hook)`` when it is over, so the serving process can kill it if
this process dies in between. A render is done when its message is read, so it shows
exactly the updates sent before it. The process lowers its own priority: on a busy CPU, DNS
answers of the serving process come first. At end of file (the serving process stopped or
died) it kills the commands still running and exits; an unexpected error ends it with a
traceback on stderr, and the serving process starts another.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from collections.abc import Coroutine
from typing import Any

from node_dns import childproc
from node_dns.sinks.hooks.engine import Engine
from node_dns.sinks.hooks.view import Rendered

CRASH = 70
"""Exit status after an unexpected error (EX_SOFTWARE)."""


async def serve(fd_args: list[str]) -> None:
    sock = childproc.child_socket(fd_args)
    if len(fd_args) > 1 and int(fd_args[1]):
        os.nice(int(fd_args[1]))
    reader, writer = await asyncio.open_connection(sock=sock)
    engine: Engine | None = None
    tasks: set[asyncio.Task[None]] = set()

    def reply(ident: int, value: object) -> None:
        writer.write(childproc.frame(("reply", ident, value)))

    loop = asyncio.get_running_loop()

    def started(name: str, pid: int) -> None:  # from the thread that started the command
        loop.call_soon_threadsafe(writer.write, childproc.frame(("pid", name, pid)))

    async def finish(engine: Engine, name: str) -> object:
        outcome = await engine.finish(name)
        writer.write(childproc.frame(("ended", name)))
        return outcome

    def later(ident: int, work: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            reply(ident, await work)

        task = asyncio.get_running_loop().create_task(run())
        tasks.add(task)
        task.add_done_callback(_finished(tasks))

    try:
        while True:
            try:
                message = await childproc.receive(reader)
            except childproc.ChannelClosed:
                break
            kind = message[0]
            if kind == "start":
                engine = Engine(message[1])
                engine.on_start = started
                continue
            assert engine is not None, "the first message must be start"
            if kind == "update":
                engine.apply(message[1])
            elif kind == "render":
                _, ident, name, spawn, rehash = message
                prepared = engine.prepare(name, rehash)
                if isinstance(prepared, Rendered):
                    reply(ident, prepared)
                else:
                    later(ident, asyncio.to_thread(engine.write, name, prepared, spawn))
            elif kind == "start_command":
                _, ident, name = message
                engine.arm(name)
                later(ident, asyncio.to_thread(engine.start, name))
            elif kind == "finish":
                _, ident, name = message
                later(ident, finish(engine, name))
            elif kind == "cancel":
                engine.cancel(message[1])
            else:
                raise ValueError(f"unknown message {kind!r}")
    finally:
        if engine is not None:
            engine.close()


def _finished(tasks: set[asyncio.Task[None]]) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            traceback.print_exception(error)
            sys.stderr.flush()
            os._exit(CRASH)

    return done


def main(argv: list[str]) -> int:
    try:
        asyncio.run(serve(argv))
    except Exception:
        traceback.print_exc()
        return CRASH
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
