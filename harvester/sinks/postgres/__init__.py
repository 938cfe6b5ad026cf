"""PostgreSQL: one table per stream in a schema of harvester's own, each key once, the latest value.

``[output] format = "postgres"`` (extra ``harvester[postgres]``: asyncpg writes, measured faster
than psycopg 3's async API for this load; psycopg's sync connection reads back for sync callers).
The DSN comes from the environment variable ``dsn_env`` (``HARVESTER_PG_DSN``) and is never
logged, shown or stored: messages name its host, port, database and user only.

The modules, in the order a record travels:

- :mod:`.columns`: each stream's table, a column per record field and ``key``, the natural key
  as text (:func:`harvester.records.key_text`), the primary key;
- :mod:`.rows`: records encoded as binary ``COPY`` rows, sent in key order;
- :mod:`.buffer`: the rows held between commits, each key once;
- :mod:`.sink`: :class:`PostgresSink`, each commit one transaction (a direct copy, or a merge);
- :mod:`.schema`: the tables created and migrated at the start of a run, versioned;
- :mod:`.connection` and :mod:`.dsn`: the connection, opened again after a loss; the DSN told
  without its secrets;
- :mod:`.read` and :mod:`.export`: the current records read back (async or sync), and a stream
  as CSV for the report.

At the start, a database that cannot be reached or used (down, wrong password, no right to
create the schema) is a :class:`ConfigError` (exit 2) before any call.
"""

from .buffer import SINGLES
from .columns import COLUMNS, columns
from .connection import INSTALL, driver
from .dsn import describe, reason
from .export import export_csv
from .read import current_records, fetch_current_records, fetch_records, read_records
from .schema import SCHEMA_VERSION
from .sink import MERGE_AFTER_CONFLICT, PostgresSink

__all__ = ["COLUMNS", "INSTALL", "MERGE_AFTER_CONFLICT", "SCHEMA_VERSION", "SINGLES", "PostgresSink", "columns",
           "current_records", "describe", "driver", "export_csv", "fetch_current_records", "fetch_records",
           "read_records", "reason"]
