"""``harvester simulate`` (also ``python -m harvester.simulator``): serve a simulated Graph API
on loopback until SIGINT or SIGTERM, printing its URL, its rate limit and the (simulated) tokens
to use; ``--config-out FILE`` writes a harvester config that harvests the served world within
that limit (tokens by environment variable, never in the file).

Exit codes: 0 stopped by a signal, 2 bad arguments or a port that cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from ..files import write_atomic
from ..summary import plural
from .drift import DEMO as DEMO_DRIFT
from .expansion import EXPANSION_COSTS
from .faults import DEFAULT_KINDS, FAULTS, check_kinds
from .hostile import KINDS as HOSTILE_KINDS
from .pipeline import SimulatorSettings
from .server import SimulatorServer
from .world import World, WorldSpec

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["webhooks"]:
        from .webhooks import main as send_webhooks
        return send_webhooks(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return int(exc.code or 0)
    problem = _check(args)
    if problem:
        parser.print_usage(sys.stderr)
        print(f"harvester simulate: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(args))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harvester simulate", description="Serve a simulated Instagram Graph API.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--seed", type=int, default=1, help="seed of the world and of the faults")
    p.add_argument("--accounts", type=int, default=20, help="Instagram accounts in the world")
    p.add_argument("--media-per-account", type=int, default=100, help="mean media per account")
    p.add_argument("--faults", type=float, default=0.0, help="share of calls answered with a fault, 0..1")
    p.add_argument("--fault-kinds", type=_kinds, default=DEFAULT_KINDS, metavar="A,B,...",
                   help=f"kinds of fault drawn (default {','.join(DEFAULT_KINDS)}; all: {','.join(FAULTS)})")
    p.add_argument("--latency", type=float, default=0.0, metavar="MS", help="mean latency per call in ms")
    p.add_argument("--hostile", type=_hostile, default=(), metavar="KIND,...",
                   help=f"hostile answers, applied to every answer they fit: {', '.join(HOSTILE_KINDS)}")
    p.add_argument("--calls-per-window", type=int, default=200, help="calls per token per rolling window")
    p.add_argument("--window-seconds", type=float, default=3600, help="length of the rolling window")
    p.add_argument("--app-calls-per-window", type=int, default=None, help="calls of all tokens per window")
    p.add_argument("--revoked-tokens", type=int, default=0, help="the last K tokens are revoked")
    p.add_argument("--token-health", action="store_true",
                   help="tokens expire within 60 days (every third within 7), every fourth lacks its insights scope")
    p.add_argument("--now", type=_moment, default=None, metavar="TIME",
                   help="the world's present, YYYY-MM-DDTHH:MM (UTC) or unix seconds (default: the current "
                        "hour; give the world file's now to serve the same world again later)")
    p.add_argument("--world-file", type=Path, help="write the world's URL, now, tokens and accounts here (JSON)")
    p.add_argument("--drift", action="store_true",
                   help="the API as Meta changes it: shares refused on IMAGE posts, watch_through_rate served (the "
                        "catalog does not know it), ig_reels_video_view_total_time retired an hour after the "
                        "world's now")
    p.add_argument("--expansion-cost", choices=EXPANSION_COSTS, default="one",
                   help="how a page of media with their insights nested (fields=...,insights.metric(...)) counts "
                        "against the rate limit: as one call (default), or one plus one per media nested")
    p.add_argument("--config-out", type=Path, metavar="FILE",
                   help="write a harvester config (TOML) that harvests this world at the rate limit it enforces; "
                        "its tokens are read from TOKEN_<n> variables (printed at start-up)")
    return p


def _hostile(text: str) -> tuple[str, ...]:
    """``--hostile``: kinds of :mod:`harvester.simulator.hostile`, comma-separated."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in HOSTILE_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or repr(text)} is not a hostile kind; "
                                         f"choose from {', '.join(HOSTILE_KINDS)}")
    return kinds


def _kinds(text: str) -> tuple[str, ...]:
    """``--fault-kinds``: comma-separated names of faults.FAULTS."""
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    problem = check_kinds(kinds)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return kinds


def _moment(text: str) -> float:
    """``--now``: unix seconds, or a UTC date and time."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use YYYY-MM-DDTHH:MM (UTC) or unix seconds") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


CHECKS = [
    (lambda a: not 0 <= a.port <= 65535, "--port must be between 0 and 65535"),
    (lambda a: a.accounts < 1, "--accounts must be at least 1"),
    (lambda a: a.media_per_account < 0, "--media-per-account must be 0 or more"),
    (lambda a: not 0.0 <= a.faults <= 1.0, "--faults must be a share between 0 and 1"),
    (lambda a: a.latency < 0, "--latency must be 0 or more milliseconds"),
    (lambda a: a.calls_per_window < 1, "--calls-per-window must be at least 1"),
    (lambda a: a.window_seconds <= 0, "--window-seconds must be more than 0"),
    (lambda a: a.app_calls_per_window is not None and a.app_calls_per_window < 1,
     "--app-calls-per-window must be at least 1"),
    (lambda a: a.revoked_tokens < 0, "--revoked-tokens must be 0 or more"),
    (lambda a: a.world_file is not None and not a.world_file.resolve().parent.is_dir(),
     "--world-file must be in an existing directory"),
    (lambda a: a.config_out is not None and not a.config_out.resolve().parent.is_dir(),
     "--config-out must be in an existing directory"),
]
"""(is it wrong?, what to say) for every argument argparse cannot check by type alone."""


def _check(args: argparse.Namespace) -> str | None:
    return next((message for wrong, message in CHECKS if wrong(args)), None)


async def _serve(args: argparse.Namespace) -> int:
    world = World(WorldSpec(seed=args.seed, accounts=args.accounts, media_per_account=args.media_per_account,
                            revoked_tokens=args.revoked_tokens, now=args.now, token_health=args.token_health))
    settings = settings_of(args)
    server = SimulatorServer(world, settings, host=args.host, port=args.port)
    try:
        await server.start()
    except OSError as exc:
        print(f"harvester simulate: error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.world_file is not None:
            write_atomic(args.world_file, orjson.dumps(world.to_json(server.url), option=orjson.OPT_INDENT_2))
        if args.config_out is not None:
            write_atomic(args.config_out, config_text(world, server.url, settings).encode())
        print(describe(world, server.url, settings, config_out=args.config_out), flush=True)
        await _until_signalled()
    finally:
        await server.close()
    print("simulator stopped", file=sys.stderr)
    return EXIT_OK


def settings_of(args: argparse.Namespace) -> SimulatorSettings:
    """How the simulator answers, from the command line."""
    return SimulatorSettings(calls_per_window=args.calls_per_window, window_seconds=args.window_seconds,
                             app_calls_per_window=args.app_calls_per_window, faults=args.faults,
                             latency_ms=args.latency, hostile=args.hostile, fault_kinds=args.fault_kinds,
                             drift=DEMO_DRIFT if args.drift else None, expansion_cost=args.expansion_cost)


def describe(world: World, url: str, settings: SimulatorSettings, config_out: Path | None = None) -> str:
    """The banner: where to call, at what rate, with which token, for which accounts (and, with
    ``--config-out``, the config written and the variables it reads the tokens from)."""
    lines = [f"simulator listening on {url}",
             f"  rate limit {_limit(settings)} (a harvest's [rate_limit] must stay within it); "
             f"faults {settings.faults:.0%}, latency {settings.latency_ms:g} ms, "
             f"a page of media with nested insights counts {_expansion(settings)}"
             + (f", hostile {', '.join(settings.hostile)}" if settings.hostile else ""),
             *([f"  drift: {settings.drift.describe()}"] if settings.drift is not None else []),
             f"  {'token':<40} {'kind':<10} accounts"]
    for token in world.tokens:
        state = " (revoked)" if token.revoked else ""
        lines.append(f"  {token.token:<40} {token.kind:<10} {','.join(token.account_ids)}{state}")
    if config_out is not None:
        lines.append(f"config for this world: {config_out} (harvester run --config {config_out}), with its tokens in:")
        lines += [f"  export {token_env(t.index)}={t.token}" for t in world.tokens]
    return "\n".join(lines)


def _limit(settings: SimulatorSettings) -> str:
    text = f"{plural(settings.calls_per_window, 'call')} per token per {_seconds(settings.window_seconds)}"
    if settings.app_calls_per_window is not None:
        text += f", {settings.app_calls_per_window:,} of all tokens together"
    return text


def _expansion(settings: SimulatorSettings) -> str:
    return "one call" if settings.expansion_cost == "one" else "one call per media nested, plus one"


def _seconds(seconds: float) -> str:
    return "hour" if seconds == 3600 else f"{seconds:g} s"


def token_env(index: int) -> str:
    """The environment variable the written config reads token ``index`` from."""
    return f"TOKEN_{index}"


def config_text(world: World, url: str, settings: SimulatorSettings, *, output: str = "simulated-out",
                days: int = 3) -> str:
    """A harvester config (TOML) for every account of ``world`` served at ``url``: the last ``days``
    days before the world's present, at the rate limit the simulator enforces (with no margin
    over it, a harvest of more tokens than the budget allows waits, it is never throttled)."""
    today = datetime.fromtimestamp(world.now, UTC).date()
    app = ([f"# The simulator also limits all tokens together to {settings.app_calls_per_window} calls per window",
            "# (app-level throttling, code 4, which harvester waits out).", ""]
           if settings.app_calls_per_window is not None else [])
    lines = [
        f"# Written by harvester simulate for its world (seed {world.spec.seed}, "
        f"{plural(world.spec.accounts, 'account')},",
        f"# present {datetime.fromtimestamp(world.now, UTC):%Y-%m-%dT%H:%M}Z), served at {url}.",
        "# The tokens are read from the environment: the simulator printed an export line for each.",
        "",
        "[graph]",
        f'base_url = "{url}"',
        f'instagram_base_url = "{url}"   # the simulator serves both logins',
        "",
        "[rate_limit]               # what the simulator enforces, per token over a rolling window",
        f"calls_per_window = {settings.calls_per_window}",
        f"window_seconds = {settings.window_seconds:g}",
        "",
        *app,
        "[window]                   # the world's last days (its present, not today, if --now was given)",
        f"since = {today - timedelta(days=days)}",
        f"until = {today}",
        "",
        "[output]",
        'format = "jsonl"',
        f'path = "{output}"',
        "",
        "[state]",
        f'path = "{output}/state.sqlite"',
    ]
    for token in world.tokens:
        for account in token.account_ids:
            lines += ["", "[[accounts]]", f'id = "{account}"', f'token_env = "{token_env(token.index)}"']
            if token.revoked:
                lines[-1] += "   # revoked in this world: its accounts fail (exit 3)"
            if token.kind != "facebook":
                lines.append(f'login = "{token.kind}"')
    return "\n".join(lines) + "\n"


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
