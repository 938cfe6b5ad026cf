"""``harvester``: run, backfill, status, validate, tokens, manifest, webhook, demo, simulate, report.

Exit codes: 0 done, 2 configuration or usage error (nothing called), 3 finished with units failed
for good, 1 aborted, 130/143 stopped by SIGINT/SIGTERM (the next run resumes).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import date
from pathlib import Path

from .config import Config, load_config, parse_config, read_toml, shards
from .errors import ConfigError, HarvesterError
from .sinks import paths
from .summary import plural
from .telemetry import logs

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
    logs.configure(getattr(args, "log_format", None) or "text")
    try:
        return args.handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            logs.say(f"error: {problem}", level=logging.ERROR)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvester", description="Harvest Instagram Graph API insights in bulk.")
    parser.add_argument("--version", action="version", version=f"harvester {_version()}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="harvest what a config file asks for (resumes an interrupted run)")
    run.add_argument("--config", required=True, help="TOML configuration file")
    run.add_argument("--refresh", action="store_true",
                     help="ask again the account days an earlier run on the state harvested once they had settled "
                          "([window] settle_days)")
    _shard_options(run)
    _log_format_option(run)
    run.set_defaults(handler=_cmd_run)
    backfill = sub.add_parser("backfill", help="harvest a long past window, resumably")
    backfill.add_argument("--config", required=True)
    backfill.add_argument("--since", required=True, type=_date, help="first day, YYYY-MM-DD (UTC)")
    backfill.add_argument("--until", required=True, type=_date, help="day after the last, YYYY-MM-DD (UTC)")
    backfill.add_argument("--estimate", action="store_true", help="print the time each token needs, call nothing")
    backfill.add_argument("--media-per-account", type=_positive, default=None,
                          help="media assumed for an account the state has not seen (default 100)")
    _shard_options(backfill)
    _log_format_option(backfill)
    backfill.set_defaults(handler=_cmd_backfill)
    status = sub.add_parser("status", help="the last runs, and what is left or failed")
    status.add_argument("--config", required=True)
    status.add_argument("--runs", type=_positive, default=5, help="how many runs to list (default 5)")
    _shard_options(status)
    status.set_defaults(handler=_cmd_status)
    validate = sub.add_parser("validate", help="check a config file without calling the API")
    validate.add_argument("--config", required=True)
    validate.add_argument("--discover", action="store_true",
                          help="also call the API: how many accounts each [[discover]] token finds")
    validate.set_defaults(handler=_cmd_validate)
    merge = sub.add_parser("manifest", help="one manifest of several outputs (--merge: the union of shards)")
    merge.add_argument("--merge", nargs="+", required=True, metavar="OUT",
                       help="the shards' output directories, e.g. out/shard-*-of-4")
    merge.add_argument("--into", default=None,
                       help="where manifest.json is written (default: the shards' common parent directory)")
    merge.set_defaults(handler=_cmd_manifest)
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
    demo.add_argument("--drift", action="store_true",
                      help="the API as Meta changes it (harvester simulate --drift): shares refused on IMAGE posts, "
                           "a metric the catalog does not know served")
    demo.add_argument("--output", default="demo-out")
    demo.add_argument("--format", default="duckdb", choices=("duckdb", "parquet", "jsonl"),
                      help="the output format (default duckdb: a database file with a table per stream)")
    demo.set_defaults(handler=_cmd_demo)
    webhook = sub.add_parser("webhook", help="receive Meta's story_insights webhook ([webhook] of the config)")
    webhook.add_argument("--config", required=True)
    _log_format_option(webhook)
    webhook.set_defaults(handler=_cmd_webhook)
    sub.add_parser("simulate", help="serve the simulated Graph API (see harvester simulate --help)")
    singer = sub.add_parser("singer", help="the harvest as a Singer tap: --discover, or messages on stdout")
    from .singer.tap import options as singer_options
    singer_options(singer)
    singer.set_defaults(handler=_cmd_singer)
    report = sub.add_parser("report", help="write the report of a period (one HTML page, or its figures as JSON)")
    report.add_argument("--config", required=True)
    report.add_argument("--since", type=_date, help="first day, YYYY-MM-DD")
    report.add_argument("--until", type=_date, help="day after the last, YYYY-MM-DD")
    report.add_argument("--week", action="store_true", help="the last whole week, Monday to Sunday (the default)")
    report.add_argument("--account", action="append", default=[], help="only this account id (repeatable)")
    report.add_argument("--tz", default=None,
                        help="time zone of days and hours, e.g. Europe/Berlin (default: [report] tz, else UTC)")
    report.add_argument("--format", choices=("html", "json"), default="html")
    report.add_argument("--out", help="file to write (default report.html or report.json)")
    report.set_defaults(handler=_cmd_report)
    return parser


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" when run from a tree
    that was never installed."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("harvester")
    except PackageNotFoundError:
        return "unknown"


def _log_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="stderr as text (the default) or one JSON object a line ([telemetry] log_format)")


def _log_format(args, config: Config) -> None:
    """``[telemetry] log_format`` of the config, unless ``--log-format`` said otherwise."""
    if args.log_format is None and config.telemetry.log_format != "text":
        logs.configure(config.telemetry.log_format)


def _shard_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    harvests = parser.prog.endswith(("run", "backfill"))
    group.add_argument("--shard", metavar="I/N", default=None,
                       help="harvest only the tokens of shard I of N (0 <= I < N); own state file and output"
                       if harvests else "the runs of shard I of N (0 <= I < N), from that shard's own state file")
    group.add_argument("--shards", metavar="N", type=_positive, default=None,
                       help=f"as --shard I/N, I from ${shards.INDEX_ENV} (set by a Kubernetes Indexed Job)")
    if harvests:
        parser.add_argument("--merge", action="store_true",
                            help="with a shard: once published, merge every shard's output into [output] path")


def _shard(args) -> shards.Shard | None:
    """The shard the options name, or None; ConfigError (exit 2) for a bad one."""
    if getattr(args, "shard", None) is not None:
        return shards.parse(args.shard)
    if getattr(args, "shards", None) is not None:
        return shards.from_env(args.shards)
    return None


def _sharded(config: Config, shard: shards.Shard | None) -> Config:
    return config if shard is None else shards.sharded(config, shard)


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
    """Refuses everything a run refuses before its first call: the same checks (paths.check, the
    state file's), not a lighter copy."""
    config = load_config(args.config)
    problems = paths.check(config) or _file_problems(config)
    if problems:
        raise ConfigError(problems)
    window = config.window
    tables = f" and {plural(len(config.discover), '[[discover]] table')}" if config.discover else ""
    print(f"{args.config}: ok: {plural(len(config.accounts), 'account')}{tables} over "
          f"{plural(len(config.token_keys()), 'token')}, "
          f"window {window.since} .. {window.until} ({window.totals} totals)")
    if args.discover:
        return asyncio.run(_validate_discover(config))
    return EXIT_OK


def _file_problems(config: Config) -> list[str]:
    """What a run would find wrong in the files it opens that exist already (the state file, a
    DuckDB output): the checks those files' own openers make, read only."""
    from .sinks.factory import database_file
    from .state.schema import file_problem
    problems = []
    if why := file_problem(config.state.path):
        problems.append(f"{config.path}: [state] path = {str(config.state.path)!r}: {why}")
    if config.output.format == "duckdb":
        from .sinks.duckdb import file_problem as database_problem
        if why := database_problem(database_file(config.output)):
            problems.append(f"{config.path}: [output] path = {str(config.output.path)!r}: {why}")
    return problems + _telemetry_problems(config)


def _telemetry_problems(config: Config) -> list[str]:
    """A Pushgateway configured without the extra that pushes to it."""
    if not config.telemetry.pushgateway:
        return []
    from .telemetry.metrics import require
    try:
        require()
    except ConfigError as exc:
        return [f"{config.path}: [telemetry] pushgateway = {config.telemetry.pushgateway!r}: {exc}"]
    return []


async def _validate_discover(config: Config) -> int:
    """How many accounts each [[discover]] table's token finds (and would harvest): its calls, now."""
    from .config.tokens import resolve
    from .errors import HarvesterError
    from .schedule.retry import Retry
    from .tokens.discovery import discover
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
                found = await discover(clients[table.login], token, table.login, Retry.of(config))
            except HarvesterError as exc:
                print(f"{where}: discovery failed: {exc}", file=sys.stderr)
                failed = True
                continue
            kept = [f for f in found if table.wants(f.account_id, f.username)]
            left = f" ({len(found) - len(kept)} left out by include / exclude)" if len(kept) < len(found) else ""
            print(f"{where}: {plural(len(kept), 'account')}{left}")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_tokens(args) -> int:
    config = load_config(args.config, check_tokens=False)
    return asyncio.run(_refresh_tokens(config) if args.action == "refresh" else _token_report(config))


async def _token_report(config: Config) -> int:
    import time

    from .tokens import health as token_health
    async with _clients(config) as clients:
        health = await token_health.check(config, clients)
    now = time.time()
    for h in health:
        print("\n".join(h.lines(now)))
    bad = [h for h in health if (h.debug is not None and not h.debug.valid) or h.accounts is None]
    return EXIT_FAILED if bad else EXIT_OK


async def _refresh_tokens(config: Config) -> int:
    from .tokens import health as token_health
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
    shard = _shard(args)
    _check_merge(args, shard)
    config = load_config(args.config)
    _log_format(args, config)
    return _merged(args, config, shard, asyncio.run(_run(_sharded(config, shard), shard=shard,
                                                         refresh=args.refresh)))


def _check_merge(args, shard: shards.Shard | None) -> None:
    if args.merge and shard is None:
        raise ConfigError("--merge merges the outputs of shards; expected it with --shard I/N or --shards N")


def _merged(args, config: Config, shard: shards.Shard | None, code: int) -> int:
    """After a shard's run that published (0, 3): the union of the shards' outputs, in a turn."""
    if not args.merge or shard is None or code not in (EXIT_OK, 3):
        return code
    from .sinks.merge import merge, shard_outputs
    outputs = shard_outputs(config.output.path, shard.count)
    merged = merge(outputs, config.output.path)
    print(f"merged {len(merged.merged)} of {plural(shard.count, 'shard output')} into "
          f"{Path(config.output.path) / 'manifest.json'}", file=sys.stderr)
    return code


def _cmd_backfill(args) -> int:
    shard = _shard(args)
    _check_merge(args, shard)
    whole = backfill_config(args.config, args.since, args.until)
    _log_format(args, whole)
    config = _sharded(whole, shard)
    from .plan.estimate import estimate, render
    print(render(estimate(config if shard is None else shards.own(config, shard), media=_known_media(config),
                          media_per_account=args.media_per_account)))
    if args.estimate:
        return EXIT_OK
    return _merged(args, whole, shard, asyncio.run(_run(config, kind="backfill", shard=shard)))


def _known_media(config: Config) -> dict[str, dict[str, int]]:
    """The media earlier runs saw, per account and product type, from the state (read only)."""
    from .state.store import StateStore
    if paths.state_problem(config.state.path) or not Path(config.state.path).is_file():
        return {}
    state = StateStore(config.state.path)
    try:
        return state.media_counts()
    finally:
        state.close()


def backfill_config(path: str, since: date, until: date, today: date | None = None) -> Config:
    """The config file with its window replaced: validated like any config, before any call; a
    bad --since or --until is named as the flag it came from, not as the file's [window]."""
    from datetime import UTC, datetime

    from .config.load import window_problems
    today = today or datetime.now(UTC).date()
    problems = window_problems(since, until, today, names=("--since {}", "--until {}"))
    raw = read_toml(path)
    window = {k: v for k, v in raw.get("window", {}).items() if k not in ("since", "until", "days")}
    # With bad flags, the rest of the file is still checked (every mistake at once), on a window that is not theirs.
    raw["window"] = {**window, "days": 1} if problems else {**window, "since": since, "until": until}
    try:
        config = parse_config(raw, path=path, today=today)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def _cmd_status(args) -> int:
    from .commands.status import render
    from .state.store import StateStore
    config = _sharded(load_config(args.config, check_tokens=False), _shard(args))
    if not Path(config.state.path).exists():
        print(f"no runs yet: {config.state.path} does not exist", file=sys.stderr)
        return EXIT_OK
    state = StateStore(config.state.path)
    try:
        print(render(state, limit=args.runs))
    finally:
        state.close()
    return EXIT_OK


def _cmd_manifest(args) -> int:
    from .sinks.merge import merge
    outputs = [Path(out) for out in args.merge]
    into = Path(args.into) if args.into else _common_parent(outputs)
    merged = merge(outputs, into)
    counts = ", ".join(f"{stream} {plural(len(names), 'file')}" for stream, names in merged.streams.items())
    print(f"{into / 'manifest.json'}: the union of {plural(len(outputs), 'output')}: {counts}")
    return EXIT_OK


def _common_parent(outputs: list[Path]) -> Path:
    parents = {out.resolve().parent for out in outputs}
    if len(parents) != 1:
        raise ConfigError(f"--merge: the outputs are in {len(parents)} different directories; expected --into DIR "
                          f"to say where the merged manifest goes")
    return Path(os.path.relpath(parents.pop()))


def _cmd_webhook(args) -> int:
    from .webhook.app import serve
    config = load_config(args.config, check_tokens=False)
    _log_format(args, config)
    return asyncio.run(serve(config))


def _cmd_singer(args) -> int:
    from .singer.tap import run
    return run(args)


def _cmd_report(args) -> int:
    from .report import write
    config = load_config(args.config, check_tokens=False)
    out = args.out or f"report.{args.format}"
    if why := paths.output_file_problem(out):           # before the report is built, not after
        raise ConfigError(f"--out {out}: {why}")
    try:
        path = write(config, since=args.since, until=args.until, week=args.week, accounts=args.account,
                     tz=args.tz or config.report.tz, output_format=args.format, out=out)
    except OSError as exc:
        if not exc.filename or Path(exc.filename).parent.resolve() != Path(out).parent.resolve():
            raise
        raise ConfigError(f"--out {out}: cannot be written: {exc.strerror or exc}") from None   # changed under it
    print(path)
    return EXIT_OK


def _cmd_demo(args) -> int:
    from .commands.demo import demo
    return asyncio.run(demo(args))


# -- running -----------------------------------------------------------------------------------


async def _run(config: Config, **kwargs) -> int:
    from .commands.progress import Progress
    from .run.harvester import Harvester

    if problems := _telemetry_problems(config):
        raise ConfigError(problems)             # the extra, before any call (exit 2)
    async with Harvester(config, **kwargs) as harvester:      # it opens and locks [state] path itself
        _on_signals(harvester)
        pusher = await _pushing(config, harvester, kwargs.get("shard"))
        progress = asyncio.create_task(Progress(harvester, as_log=logs.json_lines()).run())
        try:
            summary = await harvester.run()
        except ConfigError:
            raise                               # a start-up problem (paths, state, lock): exit 2
        except HarvesterError as exc:
            logs.say(f"aborted: {exc}", level=logging.ERROR)
            await _pushed(pusher, EXIT_ABORTED)
            return EXIT_ABORTED
        finally:
            progress.cancel()
            await asyncio.gather(progress, return_exceptions=True)
    # The run wrote summary.json and outcomes.jsonl (a stopped one with its signal's exit code).
    logs.say(summary.render(), event="run finished", exit_code=summary.exit_code, status=summary.status,
             seconds=summary.seconds, records=summary.records, units=summary.units)
    await _pushed(pusher, summary.exit_code)
    return summary.exit_code


async def _pushing(config: Config, harvester, shard: shards.Shard | None):
    """With ``[telemetry] pushgateway``: the run's metrics pushed every ``push_seconds`` to its
    job's and shard's group, from now until :func:`_pushed`; else None."""
    settings = config.telemetry
    logs.CONTEXT.fields.update(run_id=harvester.run_id, shard=_shard_label(shard))
    if not settings.pushgateway:
        return None
    from .telemetry.push import Pusher, group_url
    pusher = Pusher(harvester.metrics(), group_url(settings.pushgateway, settings.job, _shard_label(shard)),
                    settings.push_seconds)
    await pusher.start()
    return pusher


async def _pushed(pusher, exit_code: int) -> None:
    """The run's end, pushed: its exit code, duration and (exit 0) the time of its success."""
    if pusher is not None:
        pusher.metrics.end(exit_code)
        await pusher.stop()


def _shard_label(shard: shards.Shard | None) -> str:
    return "all" if shard is None else f"{shard.index}-of-{shard.count}"


def _on_signals(harvester) -> None:
    """The CLI (never the library) turns SIGINT/SIGTERM into a graceful stop: no new calls, calls
    in flight get STOP_GRACE_SECONDS, then the sink is flushed and checkpointed, and the run
    ends with the signal's exit code."""
    stopped: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        if not stopped:
            print(f"\n{sig.name}: finishing calls in flight, then stopping (the next run resumes)", file=sys.stderr)
            harvester.stop(exit_code=SIGNAL_EXIT[sig])
            loop.call_later(STOP_GRACE_SECONDS, harvester.cancel_in_flight)
        stopped.append(sig)

    for sig in SIGNAL_EXIT:
        loop.add_signal_handler(sig, stop, sig)


if __name__ == "__main__":
    sys.exit(main())
