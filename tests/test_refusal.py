"""Which metrics an answer refused, read from the API's own words (harvester.graph.refusal)."""

import pytest

from harvester.graph.refusal import listed_metrics, refused_metrics
from harvester.simulator import errors as E

ASKED = ("reach", "likes", "saved", "shares", "views")


@pytest.mark.parametrize("message,refused", [
    (E.NOT_FOR_PRODUCT.format(metric="shares"), ("shares",)),
    (E.NOT_FOR_PRODUCT_MANY.format(metrics="likes, saved"), ("likes", "saved")),
    ("(#100) The metric shares is not supported for this media type", ("shares",)),
    ("(#100) Starting from version v22.0 and above, the views metric is no longer supported for the queried media",
     ("views",)),
    (E.MUST_BE_ONE_OF.format(index=3, values=E.MEDIA_METRIC_ENUM), ("shares",)),
    (E.MUST_BE_ONE_OF.format(index=9, values=E.MEDIA_METRIC_ENUM), ()),       # no such position asked
    (E.NOT_FOR_PRODUCT.format(metric="plays"), ()),                            # not asked: nothing to drop
    ("An unknown error has occurred.", ()),
])
def test_the_refused_metrics_are_the_asked_ones_the_words_name(message, refused):
    assert refused_metrics(message, ASKED) == refused


def test_the_must_be_one_of_list_is_the_apis_current_enum():
    listed = listed_metrics(E.MUST_BE_ONE_OF.format(index=0, values=E.MEDIA_METRIC_ENUM))
    assert listed[:3] == ("impressions", "reach", "replies") and "reels_skip_rate" in listed
    assert listed_metrics(E.NOT_FOR_PRODUCT.format(metric="shares")) == ()
