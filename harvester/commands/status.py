"""``harvester status``: the last runs of a state store, and what the latest one left or failed."""

from __future__ import annotations

from datetime import UTC, datetime

from ..state.lock import RunLock
from ..state.store import StateStore
from ..state.webhook import status_lines
from ..summary import Outcome


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
    lines.append("")
    lines.append(f"latest run {latest.run_id}: units " + (", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
                                                        or "none checkpointed yet"))
    holder = RunLock(state.path).holder()
    if holder is not None:
        lines.append(f"  in progress now: {holder.describe()}")
    elif latest.status in ("running", "stopped"):
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
        lines.insert(0, "  discovered: " + ", ".join(f"{n} accounts with {name}" for name, n in found.items()))
    return lines
