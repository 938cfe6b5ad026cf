"""``harvester``: run, validate, demo, simulate. Exit codes: 0 done, 2 configuration or usage
error (nothing called), 3 finished with units failed for good, 1 aborted, 130/143 stopped by
SIGINT/SIGTERM (the next run resumes)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import msgspec

from .config import load_config
from .errors import ConfigError, HarvesterError

EXIT_OK, EXIT_ABORTED, EXIT_CONFIG, EXIT_FAILURES = 0, 1, 2, 3
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        from .simulator.cli import main as simulate
        return simulate(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    try:
        return args.handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvester", description="Harvest Instagram Graph API insights in bulk.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="harvest what a config file asks for")
    run.add_argument("--config", required=True, help="TOML configuration file")
    run.set_defaults(handler=_cmd_run)
    validate = sub.add_parser("validate", help="check a config file without calling the API")
    validate.add_argument("--config", required=True)
    validate.set_defaults(handler=_cmd_validate)
    demo = sub.add_parser("demo", help="harvest a simulated world end to end on loopback")
    demo.add_argument("--accounts", type=int, default=24)
    demo.add_argument("--media-per-account", type=int, default=100)
    demo.add_argument("--faults", type=float, default=0.05)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--output", default="demo-out")
    demo.set_defaults(handler=_cmd_demo)
    sub.add_parser("simulate", help="serve the simulated Graph API (see harvester simulate --help)")
    return parser


def _cmd_validate(args) -> int:
    config = load_config(args.config)
    print(f"{args.config}: ok: {len(config.accounts)} accounts over {len(config.token_keys())} tokens, "
          f"window {config.window.since} .. {config.window.until} ({config.window.totals} totals)")
    return EXIT_OK


def _cmd_run(args) -> int:
    config = load_config(args.config)
    return asyncio.run(_run(config))


async def _run(config, **kwargs) -> int:
    from .harvest import Harvester

    async with Harvester(config, **kwargs) as harvester:
        stopped = _on_signals(harvester)
        try:
            summary = await harvester.run()
        except HarvesterError as exc:
            print(f"aborted: {exc}", file=sys.stderr)
            return EXIT_ABORTED
    print(summary.render(), file=sys.stderr)
    _write_summary(Path(config.output.path) / harvester.run_id / "summary.json", summary)
    return SIGNAL_EXIT[stopped[0]] if stopped else summary.exit_code


def _on_signals(harvester) -> list[signal.Signals]:
    """The CLI (never the library) turns SIGINT/SIGTERM into a graceful stop."""
    stopped: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        if not stopped:
            print(f"\n{sig.name}: finishing calls in flight, then stopping (the next run resumes)", file=sys.stderr)
        stopped.append(sig)
        harvester.stop()

    for sig in SIGNAL_EXIT:
        loop.add_signal_handler(sig, stop, sig)
    return stopped


def _write_summary(path: Path, summary) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    tmp.replace(path)


def _cmd_demo(args) -> int:
    from .demo import demo
    return asyncio.run(demo(args))


if __name__ == "__main__":
    sys.exit(main())
