"""The catalog (harvester.catalog): the metrics the config, the planner and the simulator all read,
as plain data whose lookups agree with the tables."""

from __future__ import annotations

import pytest

from harvester import catalog


def test_each_metric_is_named_once_per_level_and_found_by_its_name():
    for level, metrics in (("account", catalog.ACCOUNT_METRICS), ("media", catalog.MEDIA_METRICS)):
        names = [m.name for m in metrics]
        assert len(names) == len(set(names)), level
        assert all(catalog.metric(level, m.name) is m and m.level == level for m in metrics)
    assert catalog.account_metric("reach") is catalog.metric("account", "reach")
    assert catalog.media_metric("reach") is catalog.metric("media", "reach")
    assert catalog.metric("account", "no_such_metric") is None


def test_every_metric_says_what_it_is_for_people():
    for m in (*catalog.ACCOUNT_METRICS, *catalog.MEDIA_METRICS):
        assert m.title and m.description, m.name


def test_breakdowns_and_timeframes_are_ones_the_api_answers_with():
    for m in (*catalog.ACCOUNT_METRICS, *catalog.MEDIA_METRICS):
        assert set(m.breakdowns) <= set(catalog.BREAKDOWN_VALUES), m.name
        assert set(m.timeframes) <= set(catalog.TIMEFRAMES) | set(catalog.DEPRECATED_TIMEFRAMES), m.name
    assert set(catalog.INTERACTION_BREAKDOWNS) | set(catalog.DEMOGRAPHIC_BREAKDOWNS) <= set(catalog.BREAKDOWN_VALUES)
    assert {b for combo in catalog.DEFAULT_DEMOGRAPHIC_BREAKDOWNS for b in combo} <= set(catalog.DEMOGRAPHIC_BREAKDOWNS)


def test_account_metrics_split_into_kinds_and_media_metrics_by_product():
    kinds = ("interaction", "series", "demographic")
    assert sum(len(catalog.account_metrics(k)) for k in kinds) == len(catalog.ACCOUNT_METRICS)
    for product in catalog.PRODUCT_TYPES:
        chosen = catalog.metrics_for_product(product)
        assert chosen and all(product in m.product_types for m in chosen)
        assert list(chosen) == [m for m in catalog.MEDIA_METRICS if m in chosen]       # catalog order
    assert all(m.product_types for m in catalog.MEDIA_METRICS)


@pytest.mark.parametrize(("media_type", "product", "expected"), [
    ("VIDEO", "REELS", "REELS"), ("IMAGE", "STORY", "STORY"), ("VIDEO", "FEED", "FEED"),
    ("CAROUSEL_ALBUM", "FEED", "FEED"), ("IMAGE", None, "FEED"), ("VIDEO", "AD", "FEED")])
def test_the_product_type_comes_from_media_product_type_never_media_type_alone(media_type, product, expected):
    assert catalog.product_type_of(media_type, product) == expected


def test_a_deprecated_metric_names_its_version_and_replacement():
    for d in catalog.DEPRECATED:
        assert catalog.deprecated(d.level, d.name) is d and d.version.startswith("v")
        assert d.replacement is None or catalog.metric(d.level, d.replacement) is not None, d.name
    assert catalog.deprecated("account", "reach") is None


def test_the_limits_the_planner_reads_are_derived_from_the_metrics():
    assert set(catalog.RECENT_ONLY) == {m.name for m in catalog.ACCOUNT_METRICS if m.last_days is not None}
    assert set(catalog.RECENT_ONLY) <= catalog.FOLLOWERS_ONLY
    assert all(catalog.account_metric(n).last_days == catalog.RECENT_DAYS for n in catalog.RECENT_ONLY)
