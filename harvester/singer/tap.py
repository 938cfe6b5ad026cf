"""``harvester singer`` (also ``tap-harvester``): the harvest as a Singer tap.

``--discover`` prints the catalog. Without it the tap writes SCHEMA, RECORD and STATE messages
to stdout for the streams the catalog selects (all three without ``--catalog``), and nothing
else: logs, progress and the summary go to stderr. ``--state`` is a STATE the tap wrote before
(as the target passed it on): the run it names resumes, none of its committed units called again.

The config is harvester's own, as TOML, or the same tables as a JSON object (what Meltano writes
from a plugin's settings). The pacing, the error policy and the exit codes are ``harvester run``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..config import Config, load_config, parse_config
from ..errors import ConfigError, HarvesterError
from ..records import STREAMS, Stream
from .catalog import catalog, selected
from .sink import STATE_KEY, SingerSink, unpack

log = logging.getLogger("harvester.singer")
EXIT_OK, EXIT_ABORTED, EXIT_CONFIG = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tap-harvester", description=__doc__.splitlines()[0])
    options(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_CONFIG if exc.code else EXIT_OK
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return run(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="harvester's config: TOML, or its tables as a JSON object")
    parser.add_argument("--discover", action="store_true", help="print the catalog (streams, keys, schemas)")
    parser.add_argument("--catalog", help="a Singer catalog: only the streams it selects are written")
    parser.add_argument("--properties", help="the same, as older Singer orchestrators name it")
    parser.add_argument("--state", help="a STATE this tap wrote: its run resumes")


def run(args: argparse.Namespace) -> int:
    """Everything the arguments name is read and checked before any call (exit 2 otherwise)."""
    if args.discover:
        config_of(args.config, check_tokens=False)
        sys.stdout.write(json.dumps(catalog(), indent=2) + "\n")
        return EXIT_OK
    config = config_of(args.config)
    chosen = args.catalog or args.properties
    streams = selected(_json(chosen, "catalog"), chosen) if chosen else STREAMS
    resume = bookmark(_json(args.state, "state"), args.state) if args.state else None
    return asyncio.run(tap(config, streams, resume))


def config_of(path: str, *, check_tokens: bool = True) -> Config:
    if Path(path).suffix.lower() == ".json":
        raw = _json(path, "config")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object holding harvester's config tables")
        return parse_config(raw, path=path, check_tokens=check_tokens)
    return load_config(path, check_tokens=check_tokens)


def _json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: the {what} is not JSON: {exc}") from None


def bookmark(state: Any, path: str) -> dict[str, Any] | None:
    """The tap's bookmark in a Singer state, checked; None for an empty state (``{}``)."""
    value = state.get("value", state) if isinstance(state, dict) else None       # a STATE message, or its value
    if value == {} or (isinstance(value, dict) and value.get("bookmarks") == {}):
        return None
    mark = value.get("bookmarks", {}).get(STATE_KEY) if isinstance(value, dict) else None
    if not isinstance(mark, dict) or not ("finished_run" in mark or {"run_id", "fingerprint", "done"} <= set(mark)):
        raise ConfigError(f"{path}: not a state of harvester's tap (expected bookmarks.{STATE_KEY} with run_id, "
                          "fingerprint and done, or finished_run, as the tap writes them)")
    if "done" in mark:
        try:
            unpack(mark["done"])
        except Exception:
            raise ConfigError(f"{path}: bookmarks.{STATE_KEY}.done is damaged (not what the tap wrote)") from None
    return mark


async def tap(config: Config, streams: tuple[Stream, ...], resume: dict[str, Any] | None) -> int:
    from ..run.harvester import Harvester
    from ..run.session import fingerprint
    from ..state.store import StateStore

    work = fingerprint(config)
    with tempfile.TemporaryDirectory(prefix="harvester-tap-") as tmp:
        state = StateStore(Path(tmp) / "tap.sqlite")     # the STATE is what is done: this file lives as the tap
        done: set[str] = set()
        if resume and "run_id" in resume:
            if resume["fingerprint"] == work:
                done = unpack(resume["done"])
                _resume(state, resume["run_id"], work, config, done)
            else:
                log.warning("the state is of other work (the config changed since): a new run starts")
        sink = SingerSink(streams, run_id=lambda: harvester.run_id, fingerprint=work, done=done,
                          commit_seconds=config.output.commit_seconds, commit_units=config.output.commit_units)
        harvester = Harvester(config, sink=sink, state=state, kind="singer")     # the run id the sink names
        try:
            async with harvester:
                summary = await harvester.run()
        except HarvesterError as exc:
            print(f"aborted: {exc}", file=sys.stderr)
            _quiet_stdout()
            return EXIT_ABORTED
        finally:
            state.close()
    print(summary.render(), file=sys.stderr)
    return summary.exit_code


def _quiet_stdout() -> None:
    """After a broken pipe, stdout's last flush at exit would fail again, with a traceback."""
    import os
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _resume(state, run_id: str, work: str, config: Config, done: set[str]) -> None:
    """The run a STATE names, with the units it had committed: ``Harvester.run`` resumes it."""
    window = config.window
    state.open_run(run_id, kind="singer", fingerprint=work, config_path=config.path, since=str(window.since),
                   until=str(window.until))
    state.commit(run_id, (), {unit: ("done", "", "") for unit in done})


if __name__ == "__main__":
    sys.exit(main())
