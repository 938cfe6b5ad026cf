"""The error policy is stated once, in RULES: the tables in the docs are generated from it."""

import pytest

from harvester.graph import policy_doc
from harvester.graph.policy import RULES, Action, ErrorRule


def test_committed_docs_are_what_the_rules_generate():
    """A rule changed without ``make docs`` fails here, naming the stale file."""
    assert policy_doc.stale() == []
    assert policy_doc.main(["--check"]) == 0


def test_a_changed_rule_makes_the_docs_stale(monkeypatch, tmp_path):
    for name in policy_doc.DOCS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((policy_doc.ROOT / name).read_text())
    assert policy_doc.stale(tmp_path) == []
    monkeypatch.setattr(policy_doc, "RULES", (*RULES, ErrorRule(Action.SKIP, "new ({ref})", code=12345)))
    assert policy_doc.stale(tmp_path) == ["docs/error-policy.md", "README.md"]
    assert "| 12345 | any | any | any | **SKIP** | new (ref) |" in policy_doc.rules_table()
    assert "12345" in policy_doc.summary_table()


def test_every_rule_shows_in_the_summary():
    summary = policy_doc.summary_table()
    for rule in RULES:
        if rule.code is not None and not isinstance(rule.code, range):
            assert str(rule.code) in summary, rule
    assert "190 (any subcode)" in summary and "190/463" not in summary


def test_not_api_rows_are_what_decide_says():
    table = policy_doc.not_api_table()
    assert "| **RETRY** | connection failed |" in table and "| **FAIL_TOKEN** | no access token |" in table


def test_a_block_without_markers_is_an_error():
    with pytest.raises(ValueError, match="generated: rules"):
        policy_doc.regenerate("no markers here", {"rules": policy_doc.rules_table})


def test_every_action_is_said_and_each_rule_shows_under_its_own():
    """The actions table and the reasons come from RULES: a metric the product type does not
    support is a REFUSE, never listed under SKIP."""
    assert set(policy_doc.ACTIONS) == set(policy_doc.WHY) == set(Action)
    lines = {line.split("**")[1]: line for line in policy_doc.why_list().splitlines()}
    assert "does not support" in lines["REFUSE"] and "does not support" not in lines["SKIP"]
    assert "-1/2207086" in lines["SKIP"] and "| **REFUSE** |" in policy_doc.actions_table()
