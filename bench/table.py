"""The table of ``bench/README.md``, from ``bench/results.json`` (``make bench-table``; ``make bench``
runs it after the benchmarks), so the table never disagrees with the figures.

Each benchmark leaves its rows in the ``table`` section of the results, keyed by figure, so a
benchmark not run this time keeps its rows of the run before, as its numbers are kept.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import orjson

from .measure import RESULTS, Row, markdown_table

README = Path(__file__).with_name("README.md")
BEGIN = "<!-- generated: table from bench/results.json by bench.table; run make bench-table -->"
END = "<!-- end generated -->"


def rows(results: dict) -> list[Row]:
    """The rows kept in the results, in the order the benchmarks run and print them."""
    table = results.get("table", {})
    fields = set(Row.__struct_fields__)
    ordered = sorted(table, key=lambda f: table[f].get("order", 0))
    return [Row(**{k: v for k, v in table[f].items() if k in fields}) for f in ordered]


def render(results: dict) -> str:
    measured = [s for s in results.values() if isinstance(s, dict) and "unix_time" in s]
    commit = {section.get("commit") for section in measured} - {None}
    note = f"Measured at commit {', '.join(sorted(commit))}." if commit else ""
    return "\n".join(x for x in (BEGIN, markdown_table(rows(results)), note, END) if x)


def write(readme: Path = README, results_path: Path = RESULTS) -> bool:
    """Replace the generated block of ``readme``; True when it changed."""
    results = orjson.loads(results_path.read_bytes())
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no generated block ({BEGIN}) to replace")
    new = pattern.sub(lambda _: render(results), text)
    readme.write_text(new)
    return new != text


if __name__ == "__main__":
    print(f"{README}: {'updated' if write() else 'unchanged'}", file=sys.stderr)
