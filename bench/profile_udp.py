"""Where node-dns' UDP CPU goes under dnsperf load: py-spy (Python frames) and perf (per DSO).

    .venv/bin/python -m bench.profile_udp [--seconds 20] [--edns] [--pure-python]

Starts the bench's control plane with 10 nodes in 2 areas, node-dns pinned to the server CPU
exactly as ``python -m bench --only udp`` runs it, and dnsperf on the client CPU with the same
query mix. While dnsperf runs, ``py-spy record --nonblocking`` samples node-dns' Python stacks
and, when installed, ``perf record`` samples the whole process (kernel included). Prints the
functions by own time and by inclusive time (py-spy) and the shares by shared object (perf).
py-spy comes from PyPI (``pip install py-spy``); perf from the linux-perf Debian package.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench import common
from node_dns.transports import accel
from tests.harness.controlplane import ControlPlane

TOP = 15


def collapsed_summary(text: str, top: int = TOP) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Own and inclusive share of samples per function from py-spy's collapsed ("raw") output:
    one line per stack, frames separated by ';', the sample count last."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return [], []

    def shares(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / total) for name, n in counter.most_common(top)]

    return shares(own), shares(inclusive)


def _short(frame: str) -> str:
    """``respond (node_dns/answer/responder.py:171)`` without the line number."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("node_dns/", "site-packages/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) :]
            break
    return f"{name} ({path})" if path else name


def _dnsperf(
    port: int, pid: int, mix: common.Mix, seconds: float, edns: bool, out: list[common.PerfResult]
) -> None:
    out.append(common.dnsperf(port, mix, seconds=seconds, edns=edns, pid=pid))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_udp", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--edns", action="store_true")
    parser.add_argument(
        "--pure-python",
        action="store_true",
        help="answer with the pure-Python batch (NODE_DNS_UDP_PURE_PYTHON=1)",
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy not installed (pip install py-spy)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="node-dns-profile-"))
    areas = [common.area_name(i) for i in range(2)]
    try:
        with ControlPlane() as plane:
            common.populate(plane, common.node_specs(10, 2))
            mix = common.write_mix(workdir / "mix.txt", areas)
            env = {accel.OFF: "1"} if args.pure_python else None
            with common.node_dns(plane, env=env) as process:
                port, pid = process.dns_port, process.pid or 0
                common.wait_answering(port, common.query_bytes(f"{areas[0]}.{common.ZONE}", common.TYPE_A))
                common.quiet(pid)
                results: list[common.PerfResult] = []
                work = (port, pid, mix, args.seconds, args.edns, results)
                load = threading.Thread(target=_dnsperf, args=work)
                load.start()
                length = f"{max(1, int(args.seconds) - 4)}"
                raw = workdir / "pyspy.txt"
                spy_argv = [spy, "record", "--nonblocking", "--format", "raw", "-r", "250"]
                spy_argv += ["-d", length, "-p", str(pid), "-o", str(raw)]
                perf = shutil.which("perf")
                perf_data = workdir / "perf.data"
                perf_run = None
                if perf:
                    perf_argv = [perf, "record", "-q", "-F", "499", "-p", str(pid), "-o", str(perf_data)]
                    perf_run = subprocess.Popen([*perf_argv, "--", "sleep", length])
                subprocess.run(common.pinned(spy_argv, common.CLIENT_CPU), capture_output=True, check=False)
                if perf_run is not None:
                    perf_run.wait()
                load.join()
                own, inclusive = collapsed_summary(raw.read_text() if raw.exists() else "")
                print(f"## node-dns UDP profile ({'EDNS' if args.edns else 'no EDNS'}, {args.seconds:g} s)\n")
                if results:
                    print(f"dnsperf: {results[0].qps:,.0f} QPS; {results[0].usage()}; {common.load_note()}\n")
                print("py-spy, own time (share of samples):\n")
                print("\n".join(f"    {share:6.1%}  {name}" for name, share in own))
                print("\npy-spy, inclusive time:\n")
                print("\n".join(f"    {share:6.1%}  {name}" for name, share in inclusive))
                if perf and perf_data.exists():
                    report = subprocess.run(
                        [perf, "report", "-i", str(perf_data), "--stdio", "--sort", "dso", "-q"],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    print("\nperf, samples by shared object:\n")
                    print("\n".join("    " + line.strip() for line in report.stdout.splitlines()[:12]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
