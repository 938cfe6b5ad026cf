"""``harvester status``: the last runs of a state store, what the latest one did, and what is
left to do: units not yet finished (a run stopped or in progress), failed units, and the work
earlier runs owe, which the next run asks again.

The units a run checkpoints are insights calls; media and account records (the ``media`` and
``accounts`` streams) are checkpointed beside them, as "objects", so that a resumed run writes
each once: status counts them apart, in words.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..state.lock import RunLock
from ..state.store import StateStore
from ..state.webhook import status_lines
from ..summary import UNITS_PLANNED, Outcome, plural


def _utc(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if ts else "-"


def render(state: StateStore, *, limit: int = 5) -> str:
    runs = state.runs(limit)
    if not runs:
        return "\n".join(["no runs yet", *status_lines(state.db)])
    lines = [f"{'run':<28} {'kind':<9} {'status':<24} {'started':<21} {'finished':<21} window / exit"]
    for r in runs:
        lines.append(f"{r.run_id:<28} {r.kind:<9} {r.status:<24} {_utc(r.started_at):<21} "
                     f"{_utc(r.finished_at):<21} {r.since} .. {r.until} / "
                     f"{r.exit_code if r.exit_code is not None else '-'}")
    latest = runs[0]
    counts = state.unit_counts(latest.run_id)
    lines += ["", f"latest run {latest.run_id} ({latest.status}): {_units(counts)}"]
    holder = RunLock(state.path).holder()
    unfinished = holder is not None or latest.status in ("running", "stopped")
    lines += _left(state, latest.run_id, counts, unfinished=unfinished)
    if holder is not None:
        lines.append(f"  in progress now: {holder.describe()}")
    elif unfinished:
        lines.append("  unfinished: `harvester run` with the same config resumes it (done units are not called again)")
    for token_key, reason in state.dead_tokens(latest.run_id):
        lines.append(f"  token {token_key}: unusable: {reason}")
    lines += _discovery(state, latest.run_id)
    lines += _refused(state)
    failures = [Outcome(*row) for row in state.failed_outcomes(latest.run_id)]
    if failures:
        lines.append(f"  failed units ({counts.get('failed', len(failures))}):")
        for o in failures:
            said = o.api_words()
            lines.append(f"    - {o.label}: {o.reason}" + (f" [{said}]" if said else ""))
        if counts.get("failed", 0) > len(failures):
            lines.append(f"    ... and {counts['failed'] - len(failures)} more")
    lines += ["", *webhook] if (webhook := status_lines(state.db)) else []
    return "\n".join(lines)


def _refused(state: StateStore) -> list[str]:
    """Metrics the API refused, learned per kind of object: left out of that kind's calls until
    they are asked again (a week after, or under another API version)."""
    rows = state.learned_refusals()
    if not rows:
        return []
    lines = ["  refused metrics, left out of calls of their kind (asked again a week after, or under another "
             "[graph] api_version):"]
    for (level, product, media_type, login, version), metric, refusals, message, learned_at in rows:
        what = " ".join(p for p in (level, product, media_type) if p)
        said = f" [{message}]" if message else ""
        lines.append(f"    - {metric} for {what} ({login}, {version}): refused x{refusals}, "
                     f"learned {_utc(learned_at)}{said}")
    return lines


def _units(counts: dict[str, int]) -> str:
    """``1,200 units done, 3 skipped, 2 failed; 310 media and account records written``."""
    if not counts:
        return "no unit checkpointed yet"
    done = plural(counts.get("done", 0), "unit") + " done"
    others = [f"{counts[k]:,} {k}" for k in ("skipped", "failed") if counts.get(k)]
    objects = counts.get("object", 0)
    written = f"; {plural(objects, 'media or account record', 'media and account records')} written" if objects else ""
    return ", ".join([done, *others]) + written


def _left(state: StateStore, run_id: str, counts: dict[str, int], *, unfinished: bool) -> list[str]:
    """What is left to do: the units of the plan not finished yet, the failed ones, and what the
    next run owes (earlier runs' failed units and windows, asked again while the API keeps them)."""
    finished = counts.get("done", 0) + counts.get("skipped", 0)
    failed = counts.get("failed", 0)
    attempts = state.attempts(run_id)
    planned = int(attempts[-1][2].get(UNITS_PLANNED, 0)) if attempts else 0
    lines = []
    if unfinished:
        left = max(0, planned - finished - failed)
        lines.append(f"  left to do: at least {plural(left, 'unit')} of the {planned:,} planned so far "
                     "(an account's media add theirs as their pages are read)")
    elif failed:
        lines.append(f"  left to do: {plural(failed, 'failed unit')} (the next run asks again those it owes)")
    else:
        lines.append("  left to do: nothing in this run's window")
    owed = _owed(state)
    if owed:
        lines.append(f"  owed to the next run: {owed} (asked again while the API keeps the data)")
    return lines


def _owed(state: StateStore) -> str:
    """The work earlier runs owe that has not expired, in words, or ""."""
    rows = dict(state.db.execute("SELECT kind, COUNT(*) FROM owed WHERE expires_at > ? GROUP BY kind",
                                 (time.time(),)).fetchall())
    parts = [plural(rows["unit"], "unit")] if rows.get("unit") else []
    parts += [plural(rows["window"], "account window")] if rows.get("window") else []
    return " and ".join(parts)


def _discovery(state: StateStore, run_id: str) -> list[str]:
    """What the run's [[discover]] tables found, per token name, and the ones that failed."""
    found: dict[str, int] = {}
    lines = []
    for account_id, name, status, reason in state.account_rows(run_id):
        if status == "discovered":
            found[name] = found.get(name, 0) + 1
        elif account_id.startswith("discover["):
            lines.append(f"  {account_id} ({name}): discovery failed: {reason}")
    if found:
        lines.insert(0, "  discovered: " + ", ".join(f"{plural(n, 'account')} with {name}"
                                                     for name, n in found.items()))
    return lines
