"""``make fuzz``: ``python -m tests.fuzz.run --inputs 1000000 [--seed N] [--live-every K]``.

Prints progress and a summary; writes each finding (input as hex, reason) to ``--out`` and exits
1 if there was any. The same seed replays the same inputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tests.fuzz import engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="how many inputs (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument(
        "--live-every", type=int, default=10, help="send every Kth input to the live listeners (0: none)"
    )
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings.txt"), help="where findings go")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzzing {args.inputs} inputs, seed {seed}, live every {args.live_every}", flush=True)

    def progress(report: engine.Report) -> None:
        print(f"  {report.summary()}", flush=True)

    report = engine.run(seed=seed, count=args.inputs, live_every=args.live_every, progress=progress)
    print(report.summary(), flush=True)
    print(f"responses by rcode (in-process, both transports): {report.outcomes()}", flush=True)
    if report.findings:
        with args.out.open("w") as out:
            for index, data, reason in report.findings:
                out.write(f"# input {index} (seed {seed})\n{data.hex()}\n{reason}\n\n")
        print(f"FAILED: {len(report.findings)} findings written to {args.out}", file=sys.stderr)
        for index, data, reason in report.findings[:5]:
            print(f"  input {index}: {reason.splitlines()[0]}  {data[:64].hex()}", file=sys.stderr)
        return 1
    print("OK: no crash, every reply parsed, the listeners kept answering", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
