"""bench/README.md's table is the one bench/results.json gives: never edited by hand, never stale."""

import re

import orjson

from bench import table


def test_the_readme_table_is_the_one_the_results_give():
    results = orjson.loads(table.RESULTS.read_bytes())
    block = re.search(re.escape(table.BEGIN) + r".*?" + re.escape(table.END), table.README.read_text(), re.S)
    assert block is not None
    assert block.group(0) == table.render(results)


def test_rows_keep_the_order_the_benchmarks_printed_them(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{table.BEGIN}\nold\n{table.END}\nrest\n")
    results = tmp_path / "results.json"
    row = {"value": "1", "baseline": "2", "ratio": 0.5, "goal": ">= 0.4", "met": True}
    results.write_bytes(orjson.dumps({"e2e": {"unix_time": 1, "commit": "abc1234"},
                                      "table": {"z first": {**row, "figure": "z first", "order": 0},
                                                "a second": {**row, "figure": "a second", "order": 1, "met": False}}}))
    assert table.write(readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n")
    assert text.index("z first") < text.index("a second")
    assert "| yes " in text and "| NO " in text and "Measured at commit abc1234." in text
    assert not table.write(readme, results)        # a second time: unchanged
