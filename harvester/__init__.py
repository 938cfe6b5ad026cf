"""harvester: Instagram Graph API insights in bulk, as flat records.

    from harvester import Harvester, load_config

    async with Harvester(load_config("harvest.toml")) as harvester:
        async for record in harvester.records():
            ...

or ``summary = await harvester.run()`` (a :class:`RunSummary`) to write them to the configured
sink. Every error it raises is a :class:`HarvesterError` (the tree: :mod:`harvester.errors`):
``ConfigError`` (and ``StateError``) before any call, ``SinkError`` when the sink fails.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from .config import Config as Config
    from .config import load_config as load_config
    from .errors import ConfigError as ConfigError
    from .errors import DecodeError as DecodeError
    from .errors import GraphError as GraphError
    from .errors import HarvesterError as HarvesterError
    from .errors import SinkError as SinkError
    from .errors import StateError as StateError
    from .errors import TransportError as TransportError
    from .records import AccountRecord as AccountRecord
    from .records import InsightRecord as InsightRecord
    from .records import MediaRecord as MediaRecord
    from .records import Record as Record
    from .records import natural_key as natural_key
    from .run.harvester import Harvester as Harvester
    from .summary import Outcome as Outcome
    from .summary import RunSummary as RunSummary

_EXPORTS = {
    "Config": "config", "load_config": "config",
    "ConfigError": "errors", "DecodeError": "errors", "GraphError": "errors",
    "HarvesterError": "errors", "SinkError": "errors", "StateError": "errors", "TransportError": "errors",
    "Harvester": "run.harvester",
    "Record": "records", "InsightRecord": "records", "MediaRecord": "records", "AccountRecord": "records",
    "natural_key": "records",
    "RunSummary": "summary", "Outcome": "summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import public names on first use, so that ``import harvester.catalog`` stays light."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harvester' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
