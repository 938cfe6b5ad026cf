import json
import sys

import pandas as pd

OUT = sys.argv[1] if len(sys.argv) > 1 else "out"
manifest = json.load(open(f"{OUT}/manifest.json"))
TYPES = {"account_id": str, "object_id": str, "media_id": str, "like_count": "Int64", "comments_count": "Int64",
         "followers_count": "Int64", "follows_count": "Int64", "media_count": "Int64"}
TIMES = ("since", "until", "end_time", "harvested_at", "timestamp")


def stream(name: str) -> pd.DataFrame:
    frames = [pd.read_json(f"{OUT}/{f}", lines=True, dtype=TYPES)
              for f in manifest["streams"][name]]
    df = pd.concat(frames, ignore_index=True)
    for column in TIMES:
        if column in df:
            df[column] = pd.to_datetime(df[column], utc=True, format="%Y-%m-%dT%H:%M:%S%z")
    return df


insights, media, accounts = stream("insights"), stream("media"), stream("accounts")
plain = insights[(insights.object_type == "media") & (insights.dimension_keys.str.len() == 0)]
per_media = plain.pivot_table(index="object_id", columns="metric", values="value")
posts = media.join(per_media, on="media_id")
posts["engagement_rate"] = posts.total_interactions / posts.reach
best = (posts[posts.media_product_type != "STORY"]
        .assign(weekday=lambda d: d.timestamp.dt.day_name(), hour=lambda d: d.timestamp.dt.hour)
        .groupby(["weekday", "hour"]).engagement_rate.median().sort_values(ascending=False))
print(posts.nlargest(3, "engagement_rate")[["permalink", "media_product_type", "reach", "engagement_rate"]])
print(best.head(3))
print(media.dtypes[["media_id", "timestamp", "like_count"]].to_dict())
