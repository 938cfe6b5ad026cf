"""harvester as a dlt source (``pip install 'harvester[dlt]'``): ``harvester_source(config)`` gives
the three streams as dlt resources, for any of dlt's destinations (BigQuery, Snowflake, DuckDB,
PostgreSQL, files...). See ``docs/dlt.md``."""

from .source import harvester_source

__all__ = ["harvester_source"]
