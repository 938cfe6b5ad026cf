"""``make bench`` (``python -m bench [decode e2e expansion faults makespan memory nightly report resume scale sinks
sinks_postgres webhook] [--quick]``).

Runs the benchmarks named (all by default), prints the table (figure, baseline, ratio, goal,
met?) and merges them into ``bench/results.json``: one section per benchmark, each number from
its latest run (a benchmark not run this time keeps its section from the run before, and a
figure its benchmark did not measure this time, such as ``make bench-scale``'s largest size,
keeps its value).

Each benchmark checks its own correctness too (records equal to the simulator's ground truth, no
rolling window exceeded, every delivery stored once, ...): one that fails a check, or crashes,
is reported, its figures are not written, the others still run, and the exit status is 1.
``--quick`` is the smoke run of CI (``make bench-smoke``): small sizes, the same checks, a goal
missed (a figure too slow) never fails it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
from importlib import import_module

import msgspec

from . import table as readme_table
from .measure import BenchFailure, Outcome, Row, markdown_table, merge_results

BENCHMARKS = ("decode", "e2e", "expansion", "faults", "makespan", "memory", "nightly", "report", "resume", "scale",
              "sinks", "sinks_postgres", "warehouse", "webhook")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one round: a smoke run of the checks, not figures")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    results: dict[str, dict] = {}
    rows: list[Row] = []
    failed: dict[str, str] = {}
    for name in names:
        started = time.monotonic()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            module = import_module(f".{name}", __package__)
            outcome: Outcome = module.run(quick=args.quick)
        except BenchFailure as failure:
            failed[name] = str(failure)
            print(f"{name}: FAILED: {failure}", file=sys.stderr, flush=True)
            continue
        except Exception as error:      # a benchmark that crashes is as broken as one that checks wrong
            failed[name] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
            print(f"{name}: FAILED: {failed[name]}", file=sys.stderr, flush=True)
            continue
        section = getattr(module, "SECTION", name)      # a section several benchmarks fill (sinks): keys merged
        results[section] = {**results.get(section, {}), **outcome.results,
                            "bench_seconds": round(time.monotonic() - started, 1), "unix_time": int(time.time())}
        rows += outcome.rows
        print(f"{name}: checks passed in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    print(markdown_table(rows))
    if failed:
        print(f"{len(failed)} of {len(names)} benchmarks FAILED (their figures are not written): "
              + "; ".join(f"{name}: {why}" for name, why in failed.items()), file=sys.stderr)
    if not args.quick and results:
        commit = _commit()
        for section in results.values():
            section["commit"] = commit
        results["table"] = {row.figure: {**msgspec.structs.asdict(row), "order": i} for i, row in enumerate(rows)}
        print(f"wrote {merge_results(results)}", file=sys.stderr)
        readme_table.write()
    return 1 if failed else 0


def _commit() -> str:
    """The commit measured (with ``+`` when the work tree differs from it), for the table's note."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+" if git("status", "--porcelain", "--untracked-files=no") else "")


if __name__ == "__main__":
    sys.exit(main())
