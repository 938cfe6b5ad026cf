"""A run's Prometheus metrics, read from what the run already counts.

Nothing is counted twice: a collector reads the run's flat counters, its tokens' usage and
expiry at the moment Prometheus (or a push to a Pushgateway) asks, so the figures always agree
with ``summary.json``. Names follow Prometheus' conventions: base units in the name, ``_total``
for counters. A token is labelled by the name the configuration gives it (its environment
variable or ``file:<path>``), never by the token.

Needs ``prometheus-client`` (``pip install 'harvester[prometheus]'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from .. import summary as stat
from ..errors import ConfigError

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:                               # the extra is missing: said by require()
    CollectorRegistry = None  # type: ignore[assignment,misc]

EXTRA = "pip install 'harvester[prometheus]'"

CALL_OUTCOMES = {"ok": stat.CALLS_OK, "error": stat.CALLS_ERROR, "skipped": stat.CALLS_SKIPPED,
                 "hedged": stat.CALLS_HEDGED}
"""``harvester_calls_total{outcome}``: answers used, errors (retried or not; the summary's
"errors": error answers less the expected skips), answers meaning "nothing to harvest", and
hedged copies sent."""
STREAM_RECORDS = {"insights": stat.RECORDS_WRITTEN, "media": stat.RECORDS_MEDIA, "accounts": stat.RECORDS_ACCOUNTS}
UNIT_STATUSES = {"done": stat.UNITS_DONE, "skipped": stat.UNITS_SKIPPED, "refused": stat.UNITS_REFUSED,
                 "failed": stat.UNITS_FAILED, "failed_token": stat.UNITS_FAILED_TOKEN}


def require() -> None:
    """ConfigError naming the extra when prometheus-client is not installed."""
    if CollectorRegistry is None:
        raise ConfigError(f"Prometheus metrics need the Python package 'prometheus-client', which is not "
                          f"installed: {EXTRA}")


class Observed(Protocol):
    """What the metrics read of a run (the Harvester gives it)."""

    def counters(self) -> Mapping[str, float]: ...
    def token_usage(self) -> Mapping[str, float]:
        """Token name -> the share of its rate limit in use (0 to 1)."""
        ...
    def token_expiry(self) -> Mapping[str, float]:
        """Token name -> when it expires (Unix seconds), where ``/debug_token`` said."""
        ...


class RunMetrics:
    """The metrics of one run in ``registry`` (a new one by default; a service passes its own, so
    harvester's metrics show on its ``/metrics``)."""

    def __init__(self, observed: Observed, *, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time):
        require()
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.observed, self._clock = observed, clock
        self.started = clock()
        self.finished: float | None = None
        self.exit_code: int | None = None
        self.last_success: float | None = None
        self.registry.register(_Collector(self))

    def end(self, exit_code: int) -> None:
        """The run ended: its exit code, its duration, and when it last succeeded (exit 0)."""
        self.finished, self.exit_code = self._clock(), exit_code
        if exit_code == 0:
            self.last_success = self.finished

    def duration(self) -> float:
        return (self.finished if self.finished is not None else self._clock()) - self.started


class _Collector(Collector):
    def __init__(self, run: RunMetrics):
        self.run = run

    def collect(self) -> Iterator[Metric]:
        run, c = self.run, self.run.observed.counters()
        errors, _, _ = stat.error_counts(dict(c))
        yield _labelled(CounterMetricFamily("harvester_calls", "API calls by outcome", labels=["outcome"]),
                        {**{k: c.get(name, 0) for k, name in CALL_OUTCOMES.items()}, "error": errors})
        yield CounterMetricFamily("harvester_throttles", "Throttling answers (codes 4, 17, 32, 613, 80002)",
                                  value=c.get(stat.THROTTLES, 0))
        yield _labelled(CounterMetricFamily("harvester_records_written", "Records made durable by the sink",
                                            labels=["stream"]),
                        {k: c.get(name, 0) for k, name in STREAM_RECORDS.items()})
        yield _labelled(CounterMetricFamily("harvester_units", "Units of work (one API call each) by how they ended",
                                            labels=["status"]),
                        {k: c.get(name, 0) for k, name in UNIT_STATUSES.items()})
        yield GaugeMetricFamily("harvester_run_duration_seconds", "Seconds the run has taken (so far)",
                                value=run.duration())
        if run.exit_code is not None:
            yield GaugeMetricFamily("harvester_run_exit_code", "The run's exit code (0 ok, 3 units failed, 1 aborted)",
                                    value=run.exit_code)
        if run.last_success is not None:
            yield GaugeMetricFamily("harvester_run_last_success_timestamp_seconds",
                                    "When a run last ended with exit 0 (Unix seconds)", value=run.last_success)
        yield _labelled(GaugeMetricFamily("harvester_rate_limit_usage_ratio",
                                          "Share of each token's rate limit in use (0 to 1)", labels=["token"]),
                        run.observed.token_usage())
        yield _labelled(GaugeMetricFamily("harvester_token_expiry_timestamp_seconds",
                                          "When each token expires (Unix seconds; /debug_token, with [app])",
                                          labels=["token"]),
                        run.observed.token_expiry())


def _labelled(family: CounterMetricFamily | GaugeMetricFamily, values: Mapping[str, float]) -> Metric:
    for label, value in values.items():
        family.add_metric([label], value)
    return family
