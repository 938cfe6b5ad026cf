"""Benchmarks of harvester, run by ``make bench`` (``python -m bench``); see bench/README.md."""
