"""The natural key: one rule, the same for a record, for its JSON read back, and for the truth."""

import inspect

import msgspec
import pytest

from harvester.records import KEY_FIELDS, InsightRecord, key_of, make_key, natural_key

BASE = {"account_id": "1", "object_id": "1", "object_type": "account", "metric": "reach", "period": "day"}
SHAPES = [
    {"since": "2026-10-01T07:00:00+0000", "until": "2026-10-02T07:00:00+0000"},
    {"since": "2026-10-01T07:00:00+0000", "until": "2026-10-02T07:00:00+0000",
     "dimension_keys": ("media_product_type",), "dimension_values": ("POST",)},
    {"end_time": "2026-10-02T07:00:00+0000", "since": "2026-09-01T07:00:00+0000", "until": "2026-10-01T07:00:00+0000"},
    {"period": "lifetime", "timeframe": "this_month", "dimension_keys": ("timeframe", "age", "gender"),
     "dimension_values": ("THIS_MONTH", "18-24", "F")},
    {"object_type": "media", "object_id": "1790", "period": "lifetime"},
]


def test_key_fields_are_the_parameters_of_the_one_rule():
    assert tuple(inspect.signature(make_key).parameters) == KEY_FIELDS
    assert key_of is natural_key


@pytest.mark.parametrize("shape", SHAPES)
def test_a_record_and_its_json_have_the_same_key(shape):
    record = InsightRecord(**{**BASE, **shape})
    as_dict = msgspec.json.decode(msgspec.json.encode(record))
    assert natural_key(record) == natural_key(as_dict) == make_key(**{f: getattr(record, f) for f in KEY_FIELDS})


def test_end_time_replaces_the_request_window_and_nothing_else_does():
    daily = InsightRecord(**BASE, end_time="E", since="S1", until="U1")
    assert natural_key(daily) == natural_key(msgspec.structs.replace(daily, since="S2", until="U2"))
    total = InsightRecord(**BASE, since="S1", until="U1")
    assert natural_key(total) != natural_key(msgspec.structs.replace(total, until="U2"))
    assert natural_key(total) == natural_key(msgspec.structs.replace(total, run_id="r2", harvested_at="h", value=9))
