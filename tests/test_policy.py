"""The error policy, row by row, with real error bodies (the Graph API's documented codes, tests/fixtures/)."""

from pathlib import Path

import orjson
import pytest

from harvester.errors import ConfigError, DecodeError, GraphError, TransportError
from harvester.graph.policy import MESSAGE_LIMIT, RULES, Action, decide, rule_for
from harvester.graph.wire import Usage, decode_error

FIXTURES = Path(__file__).parent / "fixtures"
R, T, S, FT, F = Action.RETRY, Action.THROTTLE, Action.SKIP, Action.FAIL_TOKEN, Action.FAIL
RF = Action.REFUSE


def body(code, message, subcode=None, type="OAuthException", **extra) -> bytes:
    error = {"message": message, "type": type, "code": code, **extra, "fbtrace_id": "AbC123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return orjson.dumps({"error": error})


EXPIRED = ("Error validating access token: Session has expired on Tuesday, 10-Nov-26 02:00:00 PST. "
           "The current time is Tuesday, 10-Nov-26 03:00:00 PST.")

CASES = [
    # (status, body, action, reason)
    (400, body(4, "(#4) Application request limit reached"), T, "app throttled (4)"),
    (400, body(17, "(#17) User request limit reached"), T, "throttled (17)"),
    (400, body(32, "(#32) Page request limit reached"), T, "throttled (32)"),
    (400, body(613, "(#613) Calls to this api have exceeded the rate limit."), T, "throttled (613)"),
    (400, body(613, "(#613) inconsistent behavior", 1996), T, "throttled (613/1996)"),
    (400, body(80002, "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again."),
     T, "throttled (80002)"),
    (400, body(190, "Error validating access token: The session has been invalidated because the user changed "
                    "their password or Facebook has changed the session for security reasons.", 460),
     FT, "session invalidated (190/460)"),
    (400, body(190, EXPIRED, 463), FT, "token expired (190/463)"),
    (400, body(190, "The access token is invalid since the user hasn't engaged the app in longer than 90 days.", 493),
     FT, "app not used for 90 days (190/493)"),
    (400, body(190, "Invalid OAuth access token - Cannot parse access token"), FT, "invalid token (190)"),
    (400, body(190, "Error validating access token", 458), FT, "app not installed (190/458)"),
    (400, body(190, "Error validating access token: Sessions for the user are not allowed because the user is "
                    "not a confirmed user.", 464), FT, "unconfirmed user (190/464)"),
    (400, body(190, "Error validating access token: You cannot access the app till you log in to "
                    "www.facebook.com and follow the instructions given.", 459), FT, "user checkpointed (190/459)"),
    (400, body(190, "Error validating access token: The user is not an administrator of the page.", 492), FT,
     "invalid session (190/492)"),
    (400, body(190, "Malformed access token", 467), FT, "invalid token (190/467)"),
    (400, body(102, "Session key invalid or no longer valid"), FT, "session error (102)"),
    (400, body(10, "(#10) Not enough viewers for the media to show insights"), S, "not enough viewers (10)"),
    (400, None, S, "posted before business conversion (100/2108006)"),  # the recorded fixture
    (400, body(-1, "An unexpected error has occurred", 2207086), S, "not shared to Facebook (-1/2207086)"),
    (400, body(100, "(#100) The Media Insights API does not support the impressions metric "
                    "for this media product type"),
     RF, "metric refused for this media product type (100)"),
    (400, body(100, "The Instagram Media Insights API does not support the impressions, replies metric for this "
                    "media product type"), RF, "metric refused for this media product type (100)"),
    (400, body(100, "(#100) The metric shares is not supported for this media type"), RF,
     "metric refused for this media type (100)"),
    (400, body(100, "(#100) Starting from version v22.0 and above, the impressions metric is no longer supported "
                    "for the queried media"), RF, "metric no longer supported (100)"),
    (400, body(100, "(#100) metric[2] must be one of the following values: impressions, reach, replies"), RF,
     "metric unknown to the API (100)"),
    (400, body(100, "(#100) since param is not valid. Metrics data is available for the last 2 years"), S,
     "older than the API keeps (100)"),
    (403, body(10, "(#10) Application does not have permission for this action"), FT, "permission denied (10)"),
    (400, body(200, "(#200) Requires instagram_manage_insights permission"), FT, "permission denied (200)"),
    (403, body(299, "(#299) Requires extended permission: read_insights"), FT, "permission denied (299)"),
    (400, body(100, "Unsupported get request. Object with ID '17841400000000001' does not exist, cannot be loaded "
                    "due to missing permissions, or does not support this operation. Please read the Graph API "
                    "documentation at https://developers.facebook.com/docs/graph-api", 33,
               type="GraphMethodException"),
     F, "object does not exist or is not permitted for this token (100/33)"),
    (400, body(100, "Unsupported get request", 33), R, "unsupported request, maybe throttling (100/33)"),
    (500, body(1, "An unknown error occurred", 99), R, "unknown error (1/99)"),
    (500, body(1, "An unexpected error has occurred. Please retry your request later."), R, "unknown error (1)"),
    (500, body(2, "An unexpected error has occurred. Please retry your request later.", is_transient=True), R,
     "service error (2)"),
    (500, body(1, "Please reduce the amount of data you're asking for, then retry your request"), F,
     "too much data asked at once (1)"),
    (400, body(341, "(#341) Application limit reached"), R, "application limit (341)"),
    (400, body(368, "The action attempted has been deemed abusive or is otherwise disallowed"), R,
     "temporarily blocked (368)"),
    (400, body(9999, "Something new and temporary", is_transient=True), R, "transient error (9999)"),
    (429, body(9998, "Too many requests"), R, "too many requests (HTTP 429)"),
    (502, body(9997, "Bad gateway"), R, "server error (9997)"),
    (400, body(100, "(#100) There cannot be more than 30 days (2592000 s) between since and until"), F,
     "invalid parameter (100): (#100) There cannot be more than 30 days (2592000 s) between since and until"),
    (400, body(100, "(#100) Param metric_type must be one of {time_series, total_value}"), F,
     "invalid parameter (100): (#100) Param metric_type must be one of {time_series, total_value}"),
    (400, body(3, "(#3) Application does not have the capability to make this API call."), F,
     "(#3) Application does not have the capability to make this API call. (3)"),
]


@pytest.mark.parametrize("status,raw,action,reason", CASES, ids=[c[3] for c in CASES])
def test_graph_errors(status, raw, action, reason):
    if raw is None:
        raw = (FIXTURES / "media_insights_for_error_posted_before_business.json").read_bytes()
    decision = decide(decode_error(status, raw))
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.code == orjson.loads(raw)["error"]["code"]


def test_every_row_is_exercised():
    """No row of the table is dead or shadowed: each one decides at least one case above."""
    fixture = (FIXTURES / "media_insights_for_error_posted_before_business.json").read_bytes()
    used = {id(rule_for(decode_error(status, raw or fixture))) for status, raw, _, _ in CASES}
    assert [r for r in RULES if id(r) not in used] == []


def test_the_100_33_fixture_saying_the_object_is_missing_fails_at_once():
    """Its message says the object does not exist or is not permitted: asking again is futile."""
    raw = (FIXTURES / "user_insights_for_error_code_100_subcode_33.json").read_bytes()
    decision = decide(decode_error(400, raw))
    assert decision.action is F
    assert decision.reason == "object does not exist or is not permitted for this token (100/33)"


def test_throttle_waits_what_the_server_says():
    usage = Usage(percent=100, regain_seconds=19 * 60)
    decision = decide(decode_error(400, body(80002, "(#80002) too many calls"), usage))
    assert (decision.action, decision.wait, decision.scope) == (T, 1140.0, "token")


def test_throttle_without_server_hint_leaves_the_wait_to_the_scheduler():
    assert decide(decode_error(400, body(17, "(#17) User request limit reached"))).wait is None
    zero = Usage(percent=100, regain_seconds=0.0)
    assert decide(decode_error(400, body(17, "(#17) User request limit reached"), zero)).wait is None


def test_errors_of_one_shape_are_decided_alike_but_each_throttle_waits_its_own_estimate():
    """Decisions are worked out once per error shape: the wait a throttle's usage asks for is not."""
    raw = body(80002, "(#80002) too many calls")
    waits = [decide(decode_error(400, raw, usage)).wait
             for usage in (Usage(percent=100, regain_seconds=60.0), None, Usage(percent=100, regain_seconds=120.0))]
    assert waits == [60.0, None, 120.0]
    skip = body(10, "(#10) Not enough viewers for the media to show insights")
    assert decide(decode_error(400, skip)) == decide(decode_error(400, skip))


def test_app_throttle_is_app_wide():
    assert decide(decode_error(400, body(4, "(#4) Application request limit reached"))).scope == "app"


def test_code_10_is_told_apart_by_its_message():
    viewers = decide(decode_error(400, body(10, "(#10) Not enough viewers for the media to show insights")))
    permission = decide(decode_error(400, body(10, "(#10) Requires business_management permission")))
    assert (viewers.action, permission.action) == (S, FT)


@pytest.mark.parametrize("error,action,reason", [
    (TransportError("GET http://h/v25.0/1/insights failed: connection reset"), R, "connection failed"),
    (DecodeError("not JSON (HTTP 503, 212 bytes, text/html)", status=503), R,
     "unreadable answer (HTTP 503): not JSON (HTTP 503, 212 bytes, text/html)"),
    (DecodeError("bad insights body (40 bytes): Input data was truncated", status=200), R,
     "unreadable answer (HTTP 200): bad insights body (40 bytes): Input data was truncated"),
    (ConfigError("cfg.toml: no access token for token_env 'IG_TOKEN'"), FT, "no access token"),
])
def test_errors_that_are_not_graph_errors(error, action, reason):
    decision = decide(error)
    assert (decision.action, decision.reason) == (action, reason)


def test_long_messages_are_shortened_in_reasons():
    error = GraphError(status=400, code=100, subcode=None, message="x" * 1000)
    assert len(decide(error).reason) < 250


def test_docs_show_every_row_in_order():
    doc = (Path(__file__).parent.parent / "docs" / "error-policy.md").read_text()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in doc.splitlines() if line.startswith("| ")]
    table = [cells for cells in rows if len(cells) == 6 and cells[4].startswith("**")]
    assert table[-1][0] == "anything else"
    for rule, cells in zip(RULES, table[:-1], strict=True):
        line = " | ".join(cells)
        code = rule.code if not isinstance(rule.code, range) else f"{rule.code.start}-{rule.code.stop - 1}"
        assert cells[0] == str("any" if code is None else code) and rule.action.name in cells[4], line


def test_the_simulators_unsupported_get_fails_at_once_with_the_apis_words():
    from harvester.simulator.errors import unsupported_get

    reply = unsupported_get("17841400000000001")
    decision = decide(decode_error(reply.status, reply.body))
    assert (decision.action, decision.reason, decision.attempts) == \
        (F, "object does not exist or is not permitted for this token (100/33)", None)
    assert (decision.code, decision.subcode, decision.type) == (100, 33, "GraphMethodException")
    assert decision.message.startswith("Unsupported get request. Object with ID '17841400000000001' does not exist")


@pytest.mark.parametrize("status,raw,action,reason", CASES, ids=[c[3] for c in CASES])
def test_every_graph_error_carries_the_apis_code_type_and_message(status, raw, action, reason):
    if raw is None:
        raw = (FIXTURES / "media_insights_for_error_posted_before_business.json").read_bytes()
    error = orjson.loads(raw)["error"]
    decision = decide(decode_error(status, raw))
    assert (decision.code, decision.subcode, decision.type) == (error["code"], error.get("error_subcode"),
                                                                 error["type"])
    words = " ".join(error["message"].split())
    assert decision.message == (words if len(words) <= MESSAGE_LIMIT else words[: MESSAGE_LIMIT - 1] + "…")


def test_the_message_is_collapsed_and_cut_and_the_reason_stays_short():
    error = GraphError(status=400, code=368, subcode=None, message="  too\n many   words " * 100, type="OAuthException")
    decision = decide(error)
    assert decision.reason == "temporarily blocked (368)"
    assert len(decision.message) == MESSAGE_LIMIT and "  " not in decision.message and "\n" not in decision.message


def test_a_decode_error_keeps_the_detail_and_a_whole_wrong_shape_gets_one_retry():
    detail = "bad insights body (812 bytes): Expected `int`, got `str` - at `$.data[0].values[0].value`"
    whole = decide(DecodeError(detail, status=200, complete=True))
    assert (whole.action, whole.attempts) == (R, 2)
    assert whole.reason == f"unreadable answer (HTTP 200): {detail}"
    cut = decide(DecodeError("bad insights body (40 bytes): Input data was truncated", status=200))
    assert (cut.action, cut.attempts) == (R, None)
    assert len(decide(DecodeError("x" * 5000, status=200)).reason) < 250
