"""Flat named counters for a run (Scrapy's stats collector): ``calls/ok``, ``errors/code/17``,
``wait/limit_seconds``; plus the list of units that ended without data, with their reasons."""

from __future__ import annotations

from collections import Counter

import msgspec


class Outcome(msgspec.Struct, frozen=True):
    """A unit that was skipped (expected, no data) or failed (for good), and why."""

    account_id: str
    label: str
    reason: str
    code: int | None = None
    subcode: int | None = None

    @classmethod
    def of(cls, account_id: str, label: str, decision) -> Outcome:
        """The outcome of a job the policy's ``decision`` ended."""
        return cls(account_id, label, decision.reason, decision.code, decision.subcode)


SKIPPED_EXAMPLES = 100
"""Skipped units are expected (and can be many): counted by reason, with this many examples."""


class Stats:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.skipped: list[Outcome] = []
        self.skipped_by_reason: Counter[str] = Counter()
        self.failed: list[Outcome] = []
        self.carried: Counter[str] = Counter()
        """Run id -> units owed by that earlier run and asked again by this one."""

    def inc(self, name: str, n: float = 1) -> None:
        self.counters[name] += n

    def get(self, name: str) -> float:
        return self.counters.get(name, 0)

    def skip(self, outcome: Outcome) -> None:
        if len(self.skipped) < SKIPPED_EXAMPLES:
            self.skipped.append(outcome)
        self.skipped_by_reason[outcome.reason] += 1
        self.inc("units/skipped")

    def carried_over(self, run_id: str, units: int) -> None:
        self.carried[run_id] += units
        self.inc("units/carried_over", units)

    def fail(self, outcome: Outcome) -> None:
        self.failed.append(outcome)
        self.inc("units/failed")


class RunSummary(msgspec.Struct):
    """What a run did, for people (``render``) and programs (``summary.json``)."""

    run_id: str
    exit_code: int
    status: str
    seconds: float
    records: int
    units: dict[str, int]
    counters: dict[str, float]
    skipped: list[Outcome]
    """The first SKIPPED_EXAMPLES skipped units; ``skipped_by_reason`` counts them all."""
    failed: list[Outcome]
    skipped_by_reason: dict[str, int] = {}
    carried_over: dict[str, int] = {}
    """Run id -> units that earlier run owed and this one asked again."""

    def render(self) -> str:
        c = self.counters
        lines = [
            f"run {self.run_id}: {self.status} in {self.seconds:.1f} s (exit {self.exit_code})",
            f"  records written : {self.records:,}",
            "  units           : " + ", ".join(f"{k} {v:,}" for k, v in self.units.items()),
            f"  calls           : ok {int(c.get('calls/ok', 0)):,}, errors {int(c.get('calls/error', 0)):,}, "
            f"retries {int(c.get('retries', 0)):,}, throttled {int(c.get('throttles', 0)):,}",
            f"  waited (summed over calls): {c.get('wait/limit_seconds', 0):.1f} s on rate limits, "
            f"{c.get('wait/backoff_seconds', 0):.1f} s on retry backoff",
        ]
        codes = sorted((k for k in c if k.startswith("errors/")), key=lambda k: -c[k])
        if codes:
            lines.append("  errors          : " + ", ".join(f"{k[7:]} x{int(c[k])}" for k in codes))
        if self.skipped_by_reason:
            lines.append(f"  skipped ({sum(self.skipped_by_reason.values()):,}, no data to harvest): " + "; ".join(
                f"{reason} x{n:,}" for reason, n in Counter(self.skipped_by_reason).most_common()))
        lines += [f"  carried over from run {run}: {n:,} units" for run, n in self.carried_over.items()]
        lines += _outcomes("FAILED", self.failed)
        return "\n".join(lines)


def _outcomes(title: str, outcomes: list[Outcome], limit: int = 20) -> list[str]:
    if not outcomes:
        return []
    reasons = Counter(o.reason for o in outcomes)
    lines = [f"  {title} ({len(outcomes)}): " + "; ".join(f"{r} x{n}" for r, n in reasons.most_common(5))]
    lines += [f"    - {o.label}: {o.reason}" for o in outcomes[:limit]]
    if len(outcomes) > limit:
        lines.append(f"    ... and {len(outcomes) - limit} more (see summary.json)")
    return lines


def build(harvester) -> RunSummary:
    stats: Stats = harvester.stats
    failed = bool(stats.failed)
    started, finished = harvester.started or 0.0, harvester.finished or harvester.started or 0.0
    units = {"planned": int(stats.get("units/planned")), "done": int(stats.get("units/done")),
             "skipped": int(stats.get("units/skipped")), "failed": int(stats.get("units/failed") + stats.get("units/failed_token")),
             "resumed": int(stats.get("units/resumed"))}
    return RunSummary(
        run_id=harvester.run_id, exit_code=3 if failed else 0,
        status=("stopped (the next run resumes)" if harvester.stopping
                else "finished with failures" if failed else "finished"),
        seconds=finished - started, records=int(stats.get("records/written")), units=units,
        counters=dict(stats.counters), skipped=stats.skipped, failed=stats.failed,
        skipped_by_reason=dict(stats.skipped_by_reason), carried_over=dict(stats.carried))
