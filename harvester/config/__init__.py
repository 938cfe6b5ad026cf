"""TOML -> frozen msgspec Structs, with every mistake found before any call.

Validation collects every problem, not just the first, and raises them together as one
:class:`~harvester.errors.ConfigError`; each message starts with the file name and names the key
(``[window] since``, ``accounts[2].token_env``, ``[metrics] account[0].breakdowns``; list
positions count from 0), what is wrong and what is allowed. Metric names, periods, metric types,
breakdowns and timeframes are checked against :mod:`harvester.catalog`, so a typo or a metric the
API has retired is refused here instead of failing a call at 3 a.m.

Defaults live in one place: the Struct definitions of ``model`` (and ``Selection``'s defaults: every
current metric of the catalog with every breakdown). Relative paths (``[output] path``,
``[state] path``) are kept as given, i.e. relative to the working directory of the process, not
to the config file. Token values are read only to check that their variable is set; they never
enter a Struct, a message or a repr.

    model     the Structs and every default          problems  rules, generic checks, messages
    metrics   [metrics] against the catalog          load      the file, each table, the entry points
"""

from .load import load_config, parse_config, read_toml
from .model import (
                    Account,
                    Config,
                    GraphSettings,
                    MetricChoice,
                    Output,
                    RateLimit,
                    RefreshSettings,
                    SchedulerSettings,
                    Selection,
                    StateSettings,
                    Window,
)

__all__ = ["Account", "Config", "GraphSettings", "MetricChoice", "Output", "RateLimit", "RefreshSettings",
           "SchedulerSettings", "Selection", "StateSettings", "Window", "load_config", "parse_config",
           "read_toml"]
