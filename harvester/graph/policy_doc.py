"""The error policy's tables in docs/error-policy.md and README.md, generated from :data:`RULES`.

The table in code is the one statement of the policy; the docs carry copies of it between
``<!-- generated: NAME -->`` and ``<!-- end generated -->`` markers, rewritten by ``make docs``
(``python -m harvester.graph.policy_doc``). ``--check`` only says which file is stale; a test
runs the same check, so a rule changed without ``make docs`` fails the suite.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import ConfigError, DecodeError, HarvesterError, TransportError
from .policy import RULES, Action, ErrorRule, decide

ROOT = Path(__file__).resolve().parents[2]

#: Errors that are not answers of the API, each with an example ``decide`` is asked about, so the
#: action and reason shown are the ones the code gives.
NOT_API: tuple[tuple[str, str, HarvesterError], ...] = (
    ("`TransportError`: refused, reset, timeout, a body cut short on the wire",
     "reset, timeout", TransportError("connection reset")),
    ("`DecodeError`: an HTML error page, an empty body, a 200 body cut short, a body its `Content-Encoding` "
     "(gzip, deflate) does not decode, JSON that is not the expected shape",
     "HTML page, truncated or non-JSON body", DecodeError("not JSON")),
    ("`ConfigError`: no token for a `token_env`", "a missing token",
     ConfigError("no access token for token_env 'IG_TOKEN'")),
)

#: The README's words for each action, in the order it lists them.
SUMMARY: dict[Action, str] = {
    Action.THROTTLE: "**throttled**: with evidence (a wait asked, usage at 90 % or none reported, throttles "
                     "repeated) pause the token (the app for 4), wait the server's estimate (at most the window) "
                     "or a backoff, then one probe call, without using an attempt; a lone one against a budget "
                     "reported far from spent costs only that call a retry within a second",
    Action.RETRY: "**retry** with exponential backoff and full jitter, up to `max_attempts` (5) attempts (a whole "
                  "answer of the wrong shape: 2), then the unit fails and the next run owes it",
    Action.SKIP: "**skip**: nothing to harvest, recorded as skipped, not asked again",
    Action.REFUSE: "**refused metric**: the unit is asked again at once without the metric the API named, "
                   "which is recorded as refused; a few refusals for a kind of object and its later calls "
                   "leave it out",
    Action.FAIL_TOKEN: "**token unusable**: every unit of that token stops at once, reported once, never retried",
    Action.FAIL: "**fail** the unit with the API's message; the run goes on and exits 3",
}


#: What the harvest does on each action: docs/error-policy.md's "Actions" table.
ACTIONS: dict[Action, str] = {
    Action.RETRY: "retries the unit with exponential backoff and full jitter, up to `scheduler.max_attempts` "
                  "attempts in all; then the unit fails with the reason of its last error, and the next run on the "
                  "state owes it",
    Action.THROTTLE: "weighs the evidence (see docs/internals.md, \"throttles\"): a throttle with an estimate, with "
                     "the budget reported spent (usage at or above 90 %) or with nothing reported, or the third in a "
                     "row, stops calling with that token (every token, for code 4: the app's budget) and waits: "
                     "`estimated_time_to_regain_access` when the server gave one (`Decision.wait`, seconds, at most "
                     "the window), else its own growing backoff (60 s doubling). Once throttled, each further call "
                     "extends the penalty, so the token is not probed meanwhile. A lone throttle (no estimate, usage "
                     "reported below 90 %, not repeated: not the third in a row, throttles under a fifth of the "
                     "token's recent answers) costs only that call a retry after a short jittered wait (under 1 s, "
                     "2 s for a second in a row); the token keeps its pace",
    Action.SKIP: "records the unit as done without records (there is nothing to harvest, legitimately); not asked "
                 "again on resume",
    Action.REFUSE: "asks the unit again at once without the metric the API named, and records that metric as "
                   "`refused` for the object, with the API's words (not a skip, not a failure); after a few "
                   "refusals of it for a kind of object the kind's later calls leave it out, for a week",
    Action.FAIL_TOKEN: "the token is unusable: every unit of that token stops at once, the token and its accounts are "
                       "reported once, nothing is retried",
    Action.FAIL: "the unit fails for good, with its reason; the harvest goes on (exit code 3)",
}

#: Why the rows of each action lead to it: docs/error-policy.md's "Why these rows", each after
#: the answers that lead to the action (from RULES, so a rule moved moves there too).
WHY: dict[Action, str] = {
    Action.THROTTLE: "throttling comes back as HTTP 400, not 429. Meta: \"When the limit has been reached, stop "
                     "making API calls. Continuing to make calls will continue to increase your call count\" "
                     "(Meta's Graph API rate-limiting page, best practices).",
    Action.FAIL_TOKEN: "the token has expired, was revoked or is otherwise invalid (190, 102), or lacks a permission "
                       "(10 other than \"Not enough viewers\", 200-299): properties of the token, so every call of "
                       "it would fail the same way; only a new token helps.",
    Action.SKIP: "answers about the object, which has nothing to harvest and never will: a story with fewer than 5 "
                 "viewers, media posted before the business conversion, days older than the API keeps. A media not "
                 "shared to Facebook answers -1/2207086 only to the call of the metrics that need the share "
                 "(`facebook_views`, `crossposted_views`), which asks nothing else, so nothing else is skipped with "
                 "it; the state remembers the media and asks that call again a week later (it may be shared by then).",
    Action.REFUSE: "the API names a metric it does not serve for this kind of object (\"does not support the X "
                   "metric for this media product type\", \"X is not supported for this media type\"), no longer "
                   "serves, or does not list (\"metric[i] must be one of\"). The object has data: only that metric "
                   "is lost, never the unit, and it is learned per kind of object (docs/harvest-rules.md, \"When "
                   "Meta changes a metric\").",
    Action.RETRY: "1 and 2 are temporary (HTTP 500), 341 and 368 say \"wait and retry\", `is_transient: true` says "
                  "so itself, 5xx and 429 are the server's trouble; 100/33 is sometimes a disguised rate limit (as "
                  "practitioners report, Airbyte's Instagram connector among them), so it is retried, but only up to "
                  "the bound.",
    Action.FAIL: "any other 100 is an invalid parameter (a 31-day window, an unknown metric): retrying cannot fix "
                 "it, so the unit fails with the API's message, which says what to change.",
}


def _code(rule: ErrorRule) -> str:
    if rule.code is None:
        return "any"
    if isinstance(rule.code, range):
        return f"{rule.code.start}-{rule.code.stop - 1}"
    return str(rule.code)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _condition(rule: ErrorRule) -> str:
    if rule.transient is not None:
        return f"`is_transient: {str(rule.transient).lower()}`"
    return f"HTTP {rule.status}" if rule.status else "any"


def _action(rule: ErrorRule) -> str:
    return f"**{rule.action.name}**" + (" (app-wide)" if rule.scope == "app" else "")


def rules_table() -> str:
    """docs/error-policy.md's table: every row of :data:`RULES` in order, then the default."""
    lines = ["| code | subcode | message pattern | other condition | action | reason |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in RULES:
        subcode = "any" if r.subcode is None else str(r.subcode)
        pattern = f"`{_cell(r.pattern)}`" if r.pattern else "any"
        reason = r.reason.format(ref="ref", message="the message")
        lines.append(f"| {_code(r)} | {subcode} | {pattern} | {_condition(r)} | {_action(r)} | {reason} |")
    lines.append(f"| anything else | | | | **{Action.FAIL.name}** | the message (ref) |")
    return "\n".join(lines)


def not_api_table() -> str:
    """The errors that are not answers of the API, with what :func:`decide` makes of them."""
    lines = ["| error | action | reason |", "| --- | --- | --- |"]
    for text, _, example in NOT_API:
        decision = decide(example)
        lines.append(f"| {text} | **{decision.action.name}** | {decision.reason} |")
    return "\n".join(lines)


def _answer(rule: ErrorRule) -> str:
    """A row as the README names it: ``190/463``, ``10 "not enough viewers"``, ``HTTP 5xx``."""
    if rule.transient is not None:
        return "`is_transient`"
    if rule.status:
        return f"HTTP {rule.status}"
    text = _code(rule) + (f"/{rule.subcode}" if rule.subcode is not None else "")
    text += " (app)" if rule.scope == "app" else ""
    return text + (f' "{_cell(rule.pattern)}"' if rule.pattern else "")


def _answers(action: Action) -> Iterator[str]:
    """The rows of one action, a code's subcode rows folded into its catch-all row of the same action."""
    rows = [r for r in RULES if r.action is action]
    catch_all = {r.code for r in rows if isinstance(r.code, int) and r.subcode is None and r.pattern is None}
    seen: set[str] = set()
    for r in rows:
        if r.code in catch_all and (r.subcode is not None or r.pattern is not None):
            continue
        text = _answer(r)
        if r.code in catch_all and isinstance(r.code, int) and any(
                o.code == r.code and o.subcode is not None for o in rows):
            text += " (any subcode)"
        if text not in seen:
            seen.add(text)
            yield text
    yield from (words for _, words, example in NOT_API if decide(example).action is action)
    if action is Action.FAIL:
        yield "anything else"


def summary_table() -> str:
    """README's summary: for each action, the answers that lead to it."""
    lines = ["| answer | action |", "| --- | --- |"]
    lines += [f"| {', '.join(_answers(action))} | {words} |" for action, words in SUMMARY.items()]
    return "\n".join(lines)


def actions_table() -> str:
    """docs/error-policy.md's table of what each action does."""
    lines = ["| action | what the harvest does |", "| --- | --- |"]
    lines += [f"| **{action.name}** | {ACTIONS[action]} |" for action in Action]
    return "\n".join(lines)


def why_list() -> str:
    """docs/error-policy.md's reasons, each action with the answers that lead to it."""
    return "\n".join(f"- **{action.name}** ({', '.join(_answers(action))}): {WHY[action]}" for action in WHY)


#: File -> the generated blocks in it, by marker name.
DOCS: dict[str, dict[str, Callable[[], str]]] = {
    "docs/error-policy.md": {"actions": actions_table, "rules": rules_table, "not-api": not_api_table,
                             "why": why_list},
    "README.md": {"error-summary": summary_table},
}


def regenerate(text: str, blocks: dict[str, Callable[[], str]]) -> str:
    """``text`` with each marked block replaced by its generated table (a missing marker is an error)."""
    for name, make in blocks.items():
        pattern = re.compile(rf"(<!-- generated: {name} [^\n]*-->\n).*?(\n<!-- end generated -->)", re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"no '<!-- generated: {name} ... -->' ... '<!-- end generated -->' block")
        text = text[:match.start()] + match.group(1) + make() + match.group(2) + text[match.end():]
    return text


def stale(root: Path = ROOT) -> list[str]:
    """The files whose generated blocks differ from what :data:`RULES` gives now."""
    return [name for name, blocks in DOCS.items()
            if (root / name).read_text() != regenerate((root / name).read_text(), blocks)]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in ([], ["--check"]):
        print("usage: python -m harvester.graph.policy_doc [--check]", file=sys.stderr)
        return 2
    if args == ["--check"]:
        old = stale()
        for name in old:
            print(f"{name}: the error policy's tables differ from RULES; run 'make docs'", file=sys.stderr)
        return 1 if old else 0
    for name, blocks in DOCS.items():
        path = ROOT / name
        text = path.read_text()
        new = regenerate(text, blocks)
        if new != text:
            path.write_text(new)
            print(f"wrote {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
