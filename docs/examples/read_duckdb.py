import json
import sys

import duckdb

OUT = sys.argv[1] if len(sys.argv) > 1 else "out"
manifest = json.load(open(f"{OUT}/manifest.json"))
COLUMNS = {
    "insights": {"account_id": "VARCHAR", "object_id": "VARCHAR", "object_type": "VARCHAR",
                 "media_type": "VARCHAR", "media_product_type": "VARCHAR", "metric": "VARCHAR",
                 "period": "VARCHAR", "metric_type": "VARCHAR", "timeframe": "VARCHAR",
                 "since": "TIMESTAMPTZ", "until": "TIMESTAMPTZ", "end_time": "TIMESTAMPTZ",
                 "dimension_keys": "VARCHAR[]", "dimension_values": "VARCHAR[]", "value": "DOUBLE",
                 "observed_on": "DATE", "run_id": "VARCHAR", "harvested_at": "TIMESTAMPTZ", "source": "VARCHAR"},
    "media": {"media_id": "VARCHAR", "account_id": "VARCHAR", "media_type": "VARCHAR",
              "media_product_type": "VARCHAR", "timestamp": "TIMESTAMPTZ", "permalink": "VARCHAR",
              "shortcode": "VARCHAR", "caption": "VARCHAR", "like_count": "BIGINT", "comments_count": "BIGINT",
              "is_comment_enabled": "BOOLEAN", "media_url": "VARCHAR", "thumbnail_url": "VARCHAR",
              "children_ids": "VARCHAR[]", "children_types": "VARCHAR[]", "run_id": "VARCHAR",
              "harvested_at": "TIMESTAMPTZ"},
    "accounts": {"account_id": "VARCHAR", "day": "DATE", "username": "VARCHAR", "name": "VARCHAR",
                 "followers_count": "BIGINT", "follows_count": "BIGINT", "media_count": "BIGINT",
                 "biography": "VARCHAR", "website": "VARCHAR", "profile_picture_url": "VARCHAR",
                 "run_id": "VARCHAR", "harvested_at": "TIMESTAMPTZ"},
}
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
for stream, columns in COLUMNS.items():
    files = [f"{OUT}/{name}" for name in manifest["streams"][stream]]
    con.execute(f"CREATE VIEW {stream} AS SELECT * FROM read_json({files!r}, columns = {columns!r}, "
                "timestampformat = '%Y-%m-%dT%H:%M:%S%z')")

# Engagement rate of each post: its lifetime interactions over its reach, and per follower.
con.sql("""
    SELECT m.permalink, m.media_product_type, left(m.caption, 30) AS caption,
           i.value AS interactions, r.value AS reach,
           round(i.value / nullif(r.value, 0), 3) AS rate_per_reach,
           round(i.value / nullif(a.followers_count, 0), 4) AS rate_per_follower
    FROM media m
    JOIN insights i ON i.object_id = m.media_id AND i.metric = 'total_interactions' AND len(i.dimension_keys) = 0
    JOIN insights r ON r.object_id = m.media_id AND r.metric = 'reach' AND len(r.dimension_keys) = 0
    JOIN (SELECT account_id, arg_max(followers_count, day) AS followers_count FROM accounts GROUP BY 1) a
      ON a.account_id = m.account_id
    ORDER BY rate_per_reach DESC NULLS LAST LIMIT 5
""").show()

# Best hour to post (UTC): the median engagement rate of the posts published in each hour.
con.sql("""
    SELECT hour(m.timestamp) AS hour_utc, count(*) AS posts,
           round(median(i.value / nullif(r.value, 0)), 3) AS median_rate
    FROM media m
    JOIN insights i ON i.object_id = m.media_id AND i.metric = 'total_interactions' AND len(i.dimension_keys) = 0
    JOIN insights r ON r.object_id = m.media_id AND r.metric = 'reach' AND len(r.dimension_keys) = 0
    WHERE m.media_product_type <> 'STORY'
    GROUP BY 1 ORDER BY median_rate DESC LIMIT 5
""").show()

# Daily reach of one account, two ways: the time series (one value per US-Pacific day, stamped with
# the day's end) and the day totals (one per UTC day, since/until). They count unique accounts over
# different 24 hours, so they differ; neither may be summed into a weekly reach.
con.sql("""
    WITH one AS (SELECT min(account_id) AS id FROM accounts)
    SELECT s.end_time, s.value AS series_pacific_day, t.since AS utc_day, t.value AS total_utc_day
    FROM insights s
    JOIN insights t ON t.object_id = s.object_id AND t.metric = 'reach' AND t.metric_type = 'total_value'
         AND len(t.dimension_keys) = 0 AND t.since = s.end_time - INTERVAL 1 DAY - INTERVAL (hour(s.end_time)) HOUR
    WHERE s.metric = 'reach' AND s.metric_type = 'time_series' AND s.object_id = (SELECT id FROM one)
    ORDER BY s.end_time
""").show()
