"""``harvester``: run, backfill, status, validate, tokens, demo, simulate.

Exit codes: 0 done, 2 configuration or usage error (nothing called), 3 finished with units failed
for good, 1 aborted, 130/143 stopped by SIGINT/SIGTERM (the next run resumes).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import date
from pathlib import Path

import msgspec

from . import files
from .config import Config, load_config, parse_config, paths, read_toml
from .errors import ConfigError, HarvesterError

EXIT_OK, EXIT_ABORTED, EXIT_CONFIG, EXIT_FAILED = 0, 1, 2, 3
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_GRACE_SECONDS = 30.0
"""After SIGINT/SIGTERM, calls in flight get this long to finish before they are cancelled."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:
        from .simulator.cli import main as simulate
        return simulate(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # argparse printed the usage and what is wrong
        return EXIT_CONFIG if exc.code else EXIT_OK
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
    run = sub.add_parser("run", help="harvest what a config file asks for (resumes an interrupted run)")
    run.add_argument("--config", required=True, help="TOML configuration file")
    run.set_defaults(handler=_cmd_run)
    backfill = sub.add_parser("backfill", help="harvest a long past window, resumably")
    backfill.add_argument("--config", required=True)
    backfill.add_argument("--since", required=True, type=_date, help="first day, YYYY-MM-DD (UTC)")
    backfill.add_argument("--until", required=True, type=_date, help="day after the last, YYYY-MM-DD (UTC)")
    backfill.add_argument("--estimate", action="store_true", help="print the time each token needs, call nothing")
    backfill.add_argument("--media-per-account", type=_positive, default=None,
                          help="media assumed for an account the state has not seen (default 100)")
    backfill.set_defaults(handler=_cmd_backfill)
    status = sub.add_parser("status", help="the last runs, and what is left or failed")
    status.add_argument("--config", required=True)
    status.add_argument("--runs", type=_positive, default=5, help="how many runs to list (default 5)")
    status.set_defaults(handler=_cmd_status)
    validate = sub.add_parser("validate", help="check a config file without calling the API")
    validate.add_argument("--config", required=True)
    validate.add_argument("--discover", action="store_true",
                          help="also call the API: how many accounts each [[discover]] token finds")
    validate.set_defaults(handler=_cmd_validate)
    tokens = sub.add_parser("tokens", help="each token's health: valid, expiry, scopes, accounts (calls the API)")
    tokens.add_argument("action", nargs="?", choices=["refresh"],
                        help="refresh: renew the Instagram Login tokens kept in token files")
    tokens.add_argument("--config", required=True)
    tokens.set_defaults(handler=_cmd_tokens)
    demo = sub.add_parser("demo", help="harvest a simulated world end to end on loopback")
    demo.add_argument("--accounts", type=int, default=24)
    demo.add_argument("--media-per-account", type=int, default=100)
    demo.add_argument("--faults", type=float, default=0.05)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--output", default="demo-out")
    demo.set_defaults(handler=_cmd_demo)
    sub.add_parser("simulate", help="serve the simulated Graph API (see harvester simulate --help)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


# -- commands ----------------------------------------------------------------------------------


def _cmd_validate(args) -> int:
    config = load_config(args.config)
    problems = paths.check(config)
    if problems:
        raise ConfigError(problems)
    window = config.window
    tables = f" and {len(config.discover)} [[discover]] tables" if config.discover else ""
    print(f"{args.config}: ok: {len(config.accounts)} accounts{tables} over {len(config.token_keys())} tokens, "
          f"window {window.since} .. {window.until} ({window.totals} totals)")
    if args.discover:
        return asyncio.run(_validate_discover(config))
    return EXIT_OK


async def _validate_discover(config: Config) -> int:
    """How many accounts each [[discover]] table's token finds (and would harvest): its calls, now."""
    from .config.tokens import resolve
    from .discovery import discover
    from .errors import HarvesterError
    if not config.discover:
        print("no [[discover]] tables: nothing to discover")
        return EXIT_OK
    failed = False
    async with _clients(config) as clients:
        for i, table in enumerate(config.discover):
            token = resolve(table.token_name)
            where = f"discover[{i}] ({table.token_name}, {table.login} login)"
            if token is None:
                print(f"{where}: no token", file=sys.stderr)
                failed = True
                continue
            try:
                found = await discover(clients[table.login], token, table.login)
            except HarvesterError as exc:
                print(f"{where}: discovery failed: {exc}", file=sys.stderr)
                failed = True
                continue
            kept = [f for f in found if table.wants(f.account_id, f.username)]
            left = f" ({len(found) - len(kept)} left out by include / exclude)" if len(kept) < len(found) else ""
            print(f"{where}: {len(kept)} account{'' if len(kept) == 1 else 's'}{left}")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_tokens(args) -> int:
    config = load_config(args.config, check_tokens=False)
    return asyncio.run(_refresh_tokens(config) if args.action == "refresh" else _token_report(config))


async def _token_report(config: Config) -> int:
    import time

    from . import token_health
    async with _clients(config) as clients:
        health = await token_health.check(config, clients)
    now = time.time()
    for h in health:
        print("\n".join(h.lines(now)))
    bad = [h for h in health if (h.debug is not None and not h.debug.valid) or h.accounts is None]
    return EXIT_FAILED if bad else EXIT_OK


async def _refresh_tokens(config: Config) -> int:
    from . import token_health
    async with _clients(config) as clients:
        renewals = await token_health.refresh(config, clients)
    for r in renewals:
        print(f"{r.name}: {r.message}")
    failed = [r for r in renewals if not r.renewed and config.login_of(r.name) == "instagram"
              and config.token_file_of(r.name) is not None]
    return EXIT_FAILED if failed else EXIT_OK


class _clients:
    """``async with _clients(config) as clients``: a Graph client per login kind, over one transport."""

    def __init__(self, config: Config):
        self.config = config

    async def __aenter__(self):
        from .graph.aiohttp_transport import AiohttpTransport
        from .graph.client import GraphClient
        graph = self.config.graph
        self.transport = AiohttpTransport(limit=4, max_response_bytes=graph.max_response_bytes)
        return {login: GraphClient(self.transport, url, graph.api_version, max_response_bytes=graph.max_response_bytes)
                for login, url in (("facebook", graph.base_url), ("instagram", graph.instagram_base_url))}

    async def __aexit__(self, *exc) -> None:
        await self.transport.close()


def _cmd_run(args) -> int:
    return asyncio.run(_run(load_config(args.config)))


def _cmd_backfill(args) -> int:
    config = backfill_config(args.config, args.since, args.until)
    from .estimate import estimate, render
    print(render(estimate(config, media=_known_media(config), media_per_account=args.media_per_account)))
    if args.estimate:
        return EXIT_OK
    return asyncio.run(_run(config, kind="backfill"))


def _known_media(config: Config) -> dict[str, dict[str, int]]:
    """The media earlier runs saw, per account and product type, from the state (read only)."""
    from .state import StateStore
    if paths.state_problem(config.state.path) or not Path(config.state.path).is_file():
        return {}
    state = StateStore(config.state.path)
    try:
        return state.media_counts()
    finally:
        state.close()


def backfill_config(path: str, since: date, until: date) -> Config:
    """The config file with its window replaced: validated like any config, before any call."""
    raw = read_toml(path)
    window = {k: v for k, v in raw.get("window", {}).items() if k not in ("since", "until", "days")}
    raw["window"] = {**window, "since": since, "until": until}
    return parse_config(raw, path=path)


def _cmd_status(args) -> int:
    from .state import StateStore
    from .status import render
    config = load_config(args.config, check_tokens=False)
    if not Path(config.state.path).exists():
        print(f"no runs yet: {config.state.path} does not exist", file=sys.stderr)
        return EXIT_OK
    state = StateStore(config.state.path)
    try:
        print(render(state, limit=args.runs))
    finally:
        state.close()
    return EXIT_OK


def _cmd_demo(args) -> int:
    from .demo import demo
    return asyncio.run(demo(args))


# -- running -----------------------------------------------------------------------------------


async def _run(config: Config, **kwargs) -> int:
    from .harvest import Harvester
    from .progress import Progress

    async with Harvester(config, **kwargs) as harvester:      # it opens and locks [state] path itself
        stopped = _on_signals(harvester)
        progress = asyncio.create_task(Progress(harvester).run())
        try:
            summary = await harvester.run()
        except ConfigError:
            raise                               # a start-up problem (paths, state, lock): exit 2
        except HarvesterError as exc:
            print(f"aborted: {exc}", file=sys.stderr)
            return EXIT_ABORTED
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
    directory = Path(config.output.path) / harvester.run_id
    summary = msgspec.structs.replace(summary, outcomes_file=_write_outcomes(directory, harvester.stats))
    if stopped:
        summary = msgspec.structs.replace(summary, exit_code=SIGNAL_EXIT[stopped[0]])
        _record_exit_code(config, harvester.run_id, summary.exit_code)
    print(summary.render(), file=sys.stderr)
    _write_summary(directory / "summary.json", summary)
    return summary.exit_code


def _record_exit_code(config: Config, run_id: str, exit_code: int) -> None:
    """A stopped run ends with its signal's code (130/143): the state says so too, for status."""
    from .state import StateStore
    state = StateStore(config.state.path)
    try:
        state.set_exit_code(run_id, exit_code)
    finally:
        state.close()


def _write_outcomes(directory: Path, stats) -> str | None:
    """Every skipped and failed unit of the attempt, one JSON object a line, written atomically
    beside summary.json (which lists only the first ones); its file name, or None if there are none."""
    if not stats.outcome_count:
        return None
    path = directory / "outcomes.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, stats.outcome_lines())
    return path.name


def _on_signals(harvester) -> list[signal.Signals]:
    """The CLI (never the library) turns SIGINT/SIGTERM into a graceful stop: no new calls, calls
    in flight get STOP_GRACE_SECONDS, then the sink is flushed and checkpointed."""
    stopped: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        if not stopped:
            print(f"\n{sig.name}: finishing calls in flight, then stopping (the next run resumes)", file=sys.stderr)
            harvester.stop()
            loop.call_later(STOP_GRACE_SECONDS, harvester.cancel_in_flight)
        stopped.append(sig)

    for sig in SIGNAL_EXIT:
        loop.add_signal_handler(sig, stop, sig)
    return stopped


def _write_summary(path: Path, summary) -> None:
    from .files import write_atomic
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, msgspec.json.format(msgspec.json.encode(summary)))


if __name__ == "__main__":
    sys.exit(main())
