"""The names of the run's flat counters (``Stats.counters``, ``summary.json``), in one place.

Scrapy-style paths: what was counted, then which kind. Prefixes with a value after them
(``errors/code/17``, ``skipped/code/10``, ``discovered/media``) are built where they are counted.
"""

CALLS_OK = "calls/ok"
CALLS_ERROR = "calls/error"
CALLS_SKIPPED = "calls/skipped"
"""Error answers that meant "nothing to harvest" (a SKIP decision): not errors."""
RETRIES = "retries"
THROTTLES = "throttles"
THROTTLES_LONE = "throttles/lone"
THROTTLES_WAITED_OUT = "throttles/waited_out"
WAITS_CAPPED = "waits/capped"
WAIT_LIMIT_SECONDS = "wait/limit_seconds"
WAIT_BACKOFF_SECONDS = "wait/backoff_seconds"
ERRORS_TRANSPORT = "errors/transport"

UNITS_PLANNED = "units/planned"
UNITS_DONE = "units/done"
UNITS_SKIPPED = "units/skipped"
UNITS_FAILED = "units/failed"
UNITS_FAILED_TOKEN = "units/failed_token"
UNITS_RESUMED = "units/resumed"
UNITS_CARRIED_OVER = "units/carried_over"
"""Units an earlier run owed, asked again by this one."""
UNITS_CARRIED_TWICE = "units/carried_twice"
"""Units planned again that an earlier run owed and this one already asked on their own."""

RECORDS_WRITTEN = "records/written"
SINK_COMMITS = "sink/commits"
SINK_UNCOMMITTED_REMOVED = "sink/uncommitted_removed"

MEDIA_NOT_DUE = "media/not_due"
MEDIA_DUPLICATE = "media/duplicate"
PAGING_REPEATED = "paging/repeated"
PAGING_BOUNDED = "paging/bounded"

DISCOVERED_ACCOUNTS = "discovered/accounts"
"""Accounts found from [[discover]] tokens and harvested with them."""
DISCOVERED_EXCLUDED = "discovered/accounts_excluded"
"""Found, but left out by the table's include / exclude."""
DISCOVERED_ELSEWHERE = "discovered/accounts_elsewhere"
"""Found, but listed in [[accounts]] or found first by an earlier [[discover]] table: harvested once, there."""
