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


#: File -> the generated blocks in it, by marker name.
DOCS: dict[str, dict[str, Callable[[], str]]] = {
    "docs/error-policy.md": {"rules": rules_table, "not-api": not_api_table},
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
