"""``make bench`` (``python -m bench [decode e2e faults makespan memory nightly report resume scale sinks
sinks_postgres webhook] [--quick]``).

Runs the benchmarks named (all by default), prints the table (figure, baseline, ratio, goal,
met?) and merges them into ``bench/results.json``: one section per benchmark, each number from
its latest run (a benchmark not run this time keeps its section from the run before, and a
figure its benchmark did not measure this time, such as ``make bench-scale``'s largest size,
keeps its value).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib import import_module

import msgspec

from . import table as readme_table
from .measure import Outcome, Row, markdown_table, merge_results

BENCHMARKS = ("decode", "e2e", "faults", "makespan", "memory", "nightly", "report", "resume", "scale", "sinks",
              "sinks_postgres", "warehouse", "webhook")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run, not figures")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    results: dict[str, dict] = {}
    rows: list[Row] = []
    for name in names:
        started = time.monotonic()
        print(f"== {name}", file=sys.stderr, flush=True)
        module = import_module(f".{name}", __package__)
        outcome: Outcome = module.run(quick=args.quick)
        section = getattr(module, "SECTION", name)      # a section several benchmarks fill (sinks): keys merged
        results[section] = {**results.get(section, {}), **outcome.results,
                            "bench_seconds": round(time.monotonic() - started, 1), "unix_time": int(time.time())}
        rows += outcome.rows
    print(markdown_table(rows))
    if not args.quick:
        commit = _commit()
        for section in results.values():
            section["commit"] = commit
        results["table"] = {row.figure: {**msgspec.structs.asdict(row), "order": i} for i, row in enumerate(rows)}
        print(f"wrote {merge_results(results)}", file=sys.stderr)
        readme_table.write()
    return 0


def _commit() -> str:
    """The commit measured (with ``+`` when the work tree differs from it), for the table's note."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


if __name__ == "__main__":
    sys.exit(main())
