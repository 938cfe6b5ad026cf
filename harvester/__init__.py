"""harvester: Instagram Graph API insights in bulk, as flat records.

    from harvester import Harvester, load_config

    async with Harvester(load_config("harvest.toml")) as harvester:
        async for record in harvester.records():
            ...
"""

from .config import Config, load_config
from .errors import ConfigError, DecodeError, GraphError, HarvesterError, TransportError
from .harvest import Harvester
from .records import Record, natural_key

__all__ = [
    "Config", "ConfigError", "DecodeError", "GraphError", "Harvester", "HarvesterError", "Record",
    "TransportError", "load_config", "natural_key",
]
