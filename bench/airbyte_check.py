"""Run Airbyte's source-instagram against ``harvester simulate`` over loopback (issue 12, point 6).

A documented check, not a test: Airbyte is never a dependency of ours. Install it in a throwaway
virtual environment and run this script with that environment's Python; it starts the simulator
with this repository's ``harvester`` command, points every request the connector makes (its
declarative streams, its children calls and the facebook_business SDK of its ``check``) at the
simulator by rewriting ``https://graph.facebook.com`` in ``requests``' adapter, runs ``check``,
``discover`` and ``read`` of every stream, and writes what it read to ``OUT/airbyte-records.jsonl``
and a summary to ``OUT/airbyte-summary.json``::

    python3 -m venv /tmp/airbyte-venv && /tmp/airbyte-venv/bin/pip install airbyte-source-instagram
    /tmp/airbyte-venv/bin/python bench/airbyte_check.py run --out /tmp/airbyte-out
    .venv/bin/python bench/airbyte_check.py compare --out /tmp/airbyte-out   # against our ground truth

``compare`` (with this repository's environment) checks the ``users``, ``media`` and ``stories``
records against :mod:`harvester.simulator.truth`. docs/simulator.md lists what the two disagreed on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REAL = "https://graph.facebook.com"
SEED, ACCOUNTS, MEDIA = 3, 4, 12
STREAMS_COMPARED = ("users", "media", "stories")


def run(out: Path, harvester: str) -> int:
    """Simulator up, Airbyte's check, discover and read of every stream against it."""
    out.mkdir(parents=True, exist_ok=True)
    world_file = out / "world.json"
    world_file.unlink(missing_ok=True)
    server = subprocess.Popen([harvester, "simulate", "--seed", str(SEED), "--accounts", str(ACCOUNTS),
                               "--media-per-account", str(MEDIA), "--world-file", str(world_file),
                               "--calls-per-window", "100000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        world = _wait_for(world_file)
        token = next(t for t in world["tokens"] if t["token"].startswith("EAA"))   # a Facebook Login token
        _redirect(world["base_url"])
        summary = _airbyte(token["token"], out)
        summary.update(base_url=world["base_url"], token_accounts=token["accounts"], now=world["now"])
        (out / "airbyte-summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps({k: summary[k] for k in ("check", "records", "errors")}, indent=2), file=sys.stderr)
        return 0
    finally:
        server.terminate()
        server.wait(10)


def _wait_for(path: Path) -> dict[str, Any]:
    for _ in range(200):
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise SystemExit(f"the simulator wrote no {path}")


def _redirect(base_url: str) -> None:
    """Every request to graph.facebook.com goes to the simulator instead (scheme and host only)."""
    import requests.adapters

    send = requests.adapters.HTTPAdapter.send

    def redirected(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if request.url.startswith(REAL):
            request.url = base_url + request.url[len(REAL):]
        return send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = redirected  # type: ignore[method-assign]


def _airbyte(token: str, out: Path) -> dict[str, Any]:
    from airbyte_cdk.entrypoint import AirbyteEntrypoint
    from source_instagram import SourceInstagram

    config = out / "config.json"
    config.write_text(json.dumps({"access_token": token, "start_date": "2026-01-01T00:00:00Z"}))
    source = SourceInstagram(None, json.loads(config.read_text()), None)
    entry = AirbyteEntrypoint(source)
    check = [json.loads(m) for m in entry.run(entry.parse_args(["check", "--config", str(config)]))]
    discover = [json.loads(m) for m in entry.run(entry.parse_args(["discover", "--config", str(config)]))]
    streams = next(m["catalog"]["streams"] for m in discover if m["type"] == "CATALOG")
    catalog = out / "catalog.json"
    catalog.write_text(json.dumps({"streams": [
        {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for s in streams]}))
    source = SourceInstagram(json.loads(catalog.read_text()), json.loads(config.read_text()), None)
    entry = AirbyteEntrypoint(source)
    counts: dict[str, int] = {}
    errors: list[str] = []
    with (out / "airbyte-records.jsonl").open("w") as sink:
        try:
            for raw in entry.run(entry.parse_args(["read", "--config", str(config), "--catalog", str(catalog)])):
                _keep(json.loads(raw), sink, counts, errors)
        except Exception as exc:            # the read died: what it read so far still counts
            errors.append(f"read aborted: {exc!r}"[:500])
    status = next((m["connectionStatus"] for m in check if m["type"] == "CONNECTION_STATUS"), None)
    return {"check": status, "streams": [s["name"] for s in streams], "records": counts, "errors": errors}


def _keep(message: dict[str, Any], sink: Any, counts: dict[str, int], errors: list[str]) -> None:
    """A record goes to the file, an error to the list."""
    if message["type"] == "RECORD":
        record = message["record"]
        counts[record["stream"]] = counts.get(record["stream"], 0) + 1
        sink.write(json.dumps({"stream": record["stream"], "data": record["data"]}) + "\n")
    elif message["type"] == "TRACE" and message["trace"].get("type") == "ERROR":
        errors.append(message["trace"]["error"]["message"][:500])
    elif message["type"] == "LOG" and message["log"]["level"] in ("ERROR", "FATAL"):
        errors.append(message["log"]["message"][:500])


def compare(out: Path) -> int:
    """Airbyte's users, media and stories records against the simulator's ground truth."""
    from harvester.simulator.truth import expected_accounts, expected_media
    from harvester.simulator.world import World, WorldSpec

    summary = json.loads((out / "airbyte-summary.json").read_text())
    world = World(WorldSpec(seed=SEED, accounts=ACCOUNTS, media_per_account=MEDIA, now=summary["now"]))
    accounts = summary["token_accounts"]
    media = {k[0]: v for k, v in expected_media(world, accounts=accounts).items()}
    people = {k[0]: v for k, v in expected_accounts(world, time_day(summary["now"]), accounts=accounts).items()}
    got: dict[str, list[dict[str, Any]]] = {s: [] for s in STREAMS_COMPARED}
    for line in (out / "airbyte-records.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["stream"] in got:
            got[row["stream"]].append(row["data"])
    problems = []
    for user in got["users"]:
        problems += _differences(f"users {user['id']}", people.get(user["id"]), user, USER_FIELDS)
    problems += [f"users: missing {a}" for a in set(people) - {u["id"] for u in got["users"]}]
    for stream in ("media", "stories"):
        for item in got[stream]:
            problems += _differences(f"{stream} {item['id']}", media.get(item["id"]), _flat(item), MEDIA_FIELDS)
    listed = {i["id"] for s in ("media", "stories") for i in got[s]}
    problems += [f"media: missing {m}" for m in set(media) - listed]
    print("\n".join(problems) or "users, media and stories: every record equals the ground truth")
    print(f"compared {len(got['users'])} users, {len(got['media'])} media, {len(got['stories'])} stories")
    return 1 if problems else 0


USER_FIELDS = {"id": "account_id", **{k: k for k in ("username", "name", "followers_count", "follows_count",
                                                        "media_count", "biography", "website",
                                                        "profile_picture_url")}}
MEDIA_FIELDS = {"id": "media_id", "business_account_id": "account_id", "children_ids": "children_ids",
                "children_types": "children_types",
                **{k: k for k in ("media_type", "media_product_type", "timestamp", "permalink", "shortcode", "caption",
                                  "like_count", "comments_count", "is_comment_enabled", "media_url", "thumbnail_url")}}
"""Airbyte's field -> ours: every one compared, an absent field as None."""


def _flat(item: dict[str, Any]) -> dict[str, Any]:
    """Airbyte's media record with its children (whole child records) as our two tuples."""
    kids = item.get("children") or []
    return {**item, "children_ids": tuple(k["id"] for k in kids),
            "children_types": tuple(k["media_type"] for k in kids)}


def time_day(now: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(now, UTC).date()


def _differences(label: str, want: dict[str, Any] | None, got: dict[str, Any], fields: dict[str, str]) -> list[str]:
    if want is None:
        return [f"{label}: not in the ground truth"]
    out = []
    for theirs, ours in fields.items():
        value = got.get(theirs)
        if want[ours] != value and not (ours == "timestamp" and _same_time(want[ours], value)):
            out.append(f"{label}: {theirs} {value!r}, truth {want[ours]!r}")
    return out


def _same_time(a: Any, b: Any) -> bool:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(a).replace("+0000", "+00:00")) == \
            datetime.fromisoformat(str(b).replace("+0000", "+00:00"))
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("run", "compare"))
    p.add_argument("--out", type=Path, default=Path("/tmp/airbyte-out"))
    p.add_argument("--harvester", default=os.path.join(os.path.dirname(__file__), "..", ".venv", "bin", "harvester"))
    args = p.parse_args(argv)
    return run(args.out, args.harvester) if args.mode == "run" else compare(args.out)


if __name__ == "__main__":
    sys.exit(main())
