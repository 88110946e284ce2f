"""Command line: turn argv and environment into settings, set up logging, run. No other logic.

Flags are generated from the settings themselves, so a setting, its flag and its env var can
never drift apart. ``node-dns agent`` is dispatched before anything else is imported: it reads
its own plain settings (:mod:`node_dns.settings.agent`) and never loads pydantic, the
controller's settings model or the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from node_dns import kube, logs
from node_dns.settings import errors, spec
from node_dns.version import __version__

if TYPE_CHECKING:
    from node_dns.settings import Settings

AGENT_HELP = "publish this node's reachable addresses in its annotation (runs on every node)"
AGENT_DESCRIPTION = (
    "Read this node's interface addresses over netlink, follow their changes, and keep the "
    "globally reachable ones in one annotation of this node (--discovered-annotation) for "
    "the controller's `discovered` IP source. See docs/agent.md."
)

Flag = tuple[str, str, bool, str]
"""A setting's flag, its name (the argparse dest), whether it is a boolean, its help text."""


def _add_flags(parser: argparse.ArgumentParser, sections: Iterable[tuple[str, str, list[Flag]]]) -> None:
    """One argument group per settings group; each flag's help ends with its default and env var."""
    for title, doc, flags in sections:
        group = parser.add_argument_group(title, doc)
        for flag, dest, is_bool, helptext in flags:
            text = helptext.replace("%", "%%")
            if is_bool:
                action: Any = argparse.BooleanOptionalAction
                group.add_argument(flag, dest=dest, action=action, default=None, help=text)
            else:
                group.add_argument(flag, dest=dest, default=None, metavar="VALUE", help=text)


def _controller_sections() -> list[tuple[str, str, list[Flag]]]:
    from node_dns.settings import catalog

    return [
        (
            group.title,
            group.__doc__ or "",
            [(e.flag, e.name, e.is_bool, catalog.help_text(e)) for e in entries],
        )
        for group, entries in catalog.by_group()
    ]


def _agent_sections() -> list[tuple[str, str, list[Flag]]]:
    from node_dns.settings import agent

    return [
        (
            section.title,
            section.doc,
            [
                (
                    s.flag,
                    s.name,
                    s.kind is bool,
                    spec.help_text(s.description, spec.spelled(s.default), s.env),
                )
                for s in section.settings
            ],
        )
        for section in agent.SECTIONS
    ]


def build_agent_parser(prog: str = "node-dns agent") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=AGENT_DESCRIPTION)
    _add_flags(parser, _agent_sections())
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="node-dns",
        description="Authoritative DNS for Kubernetes node areas.",
        epilog="Every setting flag is also an environment variable: --foo-bar is NODE_DNS_FOO_BAR.",
    )
    parser.add_argument("--version", action="version", version=f"node-dns {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    controller = _controller_sections()
    serve = commands.add_parser("serve", help="watch nodes and serve the zone over UDP and TCP")
    _add_flags(serve, controller)
    zone = commands.add_parser(
        "zone",
        help="print the zone that would be served right now (one read-only LIST, no watch)",
        description=(
            "List nodes (and Services/EndpointSlices with --services) once and print the zone "
            "node-dns would serve from them as a zone file on stdout. Read-only; for troubleshooting."
        ),
    )
    _add_flags(zone, controller)
    agent = commands.add_parser("agent", help=AGENT_HELP, description=AGENT_DESCRIPTION)
    _add_flags(agent, _agent_sections())
    commands.add_parser("version", help="print the version")
    return parser


def load_settings(values: dict[str, Any]) -> Settings:
    """Flags win over env vars; pydantic validates both the same way."""
    from node_dns.settings import Settings

    given = {key: value for key, value in values.items() if value is not None}
    return Settings(**given)


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["agent"]:
        return agent_main(given[1:])
    parser = build_parser()
    args = parser.parse_args(given)
    if args.command in (None, "version"):
        if args.command is None:
            parser.print_help()
            return 2
        print(f"node-dns {__version__}")
        return 0
    if args.command == "agent":  # after global options: parsed again on the agent's own path
        return agent_main(given[given.index("agent") + 1 :])
    from pydantic import ValidationError

    from node_dns.settings import Settings, describe_error, startup

    values = {name: getattr(args, name, None) for name in Settings.model_fields}
    try:
        settings = startup.resolve(load_settings(values))
    except ValidationError as error:
        print(f"node-dns: {describe_error(error)}", file=sys.stderr)
        return 2
    except errors.SettingError as error:
        print(f"node-dns: {errors.line(error.name, error.message)}", file=sys.stderr)
        return 2
    problem = check_hooks(settings) if args.command == "serve" else None
    if problem:
        print(f"node-dns: {errors.line('hooks_file', problem)}", file=sys.stderr)
        return 2
    if settings.transfers_enabled:  # the key file is read now: a bad one is a settings error
        from node_dns.sinks import transfers  # with the DNS code: not loaded by `node-dns agent`

        try:
            transfers.check(settings)
        except transfers.TransferConfigError as error:
            print(f"node-dns: {errors.line(error.setting, error.message)}", file=sys.stderr)
            return 2
    try:  # before anything binds or logs: a bad kubeconfig is a settings error too
        asyncio.run(kube.CredentialsLoader(settings.kubeconfig).load())
    except kube.KubeconfigError as error:
        print(f"node-dns: {errors.line('kubeconfig', str(error))}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_json)
    if args.command == "zone":
        return print_zone(settings)
    return run(settings)


def agent_main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """`node-dns agent`: settings and the node name checked (exit 2 with one line), then run.

    Exit 1 with one line when the agent cannot work (no such node, no permission).
    """
    from node_dns.settings import agent

    env = os.environ if environ is None else environ
    args = build_agent_parser().parse_args(argv)
    try:
        settings = agent.load(vars(args), env)
    except errors.SettingError as error:
        names = [setting.name for setting in agent.SETTINGS]
        print(f"node-dns agent: {errors.line(error.name, error.message, names)}", file=sys.stderr)
        return 2
    node = settings.node_name or env.get("NODE_NAME", "").strip()
    if not node:
        message = "is required: no node name (set NODE_NAME, as the chart does from spec.nodeName)"
        print(f"node-dns agent: {errors.line('node_name', message)}", file=sys.stderr)
        return 2
    try:
        asyncio.run(kube.CredentialsLoader(settings.kubeconfig).load())
    except kube.KubeconfigError as error:
        print(f"node-dns agent: {errors.line('kubeconfig', str(error))}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_json)
    from node_dns.agent import run as agent_run

    try:  # asyncio's own loop: the agent mostly sleeps; uvloop would only be one more library in memory
        return asyncio.run(agent_run.run(settings, node))
    except KeyboardInterrupt:
        return 0


def check_hooks(settings: Settings) -> str | None:
    """Compile every hook template and check every output directory before serving.

    Only ``serve`` runs hooks; jinja2 is imported only when a hooks file is set.
    """
    if not settings.hooks_file:
        return None
    from node_dns.sinks import hooks

    try:
        hooks.check(settings.hooks_file)
    except hooks.HookConfigError as error:
        return str(error)
    return None


def print_zone(settings: Settings) -> int:
    """`node-dns zone`: the zone file on stdout, logs on stderr; 1 if the cluster cannot be listed."""
    try:
        from node_dns import zone_command

        text = asyncio.run(zone_command.zone_file(settings))
    except Exception as error:
        print(f"node-dns zone: cannot list the cluster: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


Runner = Callable[[Coroutine[Any, Any, int]], int]


def event_loop_runner() -> Runner:
    """uvloop's runner when it is installed (about 2x the UDP throughput), else asyncio's.

    Only the import is guarded: an ImportError raised while serving is an error of the server,
    not a sign that uvloop is missing.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    runner: Runner = uvloop.run
    return runner


def run(
    settings: Settings,
    *,
    serve: Callable[[Settings], Coroutine[Any, Any, int]] | None = None,
    runner: Runner | None = None,
) -> int:
    """Serve until stopped; the exit code of :func:`node_dns.serving.serve` (0 on Ctrl-C).

    The server is imported here, not with this module: ``node-dns agent`` shares the command
    line and must not load kopf, the zone and the DNS code it never runs.
    """
    if serve is None:
        from node_dns import serving

        serve = serving.serve
    start = runner or event_loop_runner()
    try:
        return start(serve(settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
