"""deploy/airflow: the DAG imports and maps one harvest task per shard, each a command our CLI
takes, then the merge of every shard's output. Runs where Airflow is installed (``make
deploy-check`` makes a venv with it: Airflow is too heavy for ``make test``'s default install)."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

from harvester.cli import _parser
from harvester.config.shards import parse

pytest.importorskip("airflow.sdk", reason="Airflow is not installed (make deploy-check runs this test with it)")

DAG_FILE = Path(__file__).resolve().parent.parent / "deploy" / "airflow" / "harvester_dag.py"


def _load(monkeypatch, shards: int):
    monkeypatch.setenv("HARVESTER_SHARDS", str(shards))
    monkeypatch.setenv("HARVESTER_OUTPUT", "/data/out")
    spec = importlib.util.spec_from_file_location("harvester_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


@pytest.mark.parametrize("shards", [1, 4, 7])
def test_the_dag_maps_one_harvest_task_per_shard_then_merges(monkeypatch, shards):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = _load(monkeypatch, shards)
    assert dag.dag_id == "harvester_nightly" and set(dag.task_ids) == {"harvest", "merge"}
    harvest, merge = dag.get_task("harvest"), dag.get_task("merge")
    assert isinstance(harvest, MappedOperator)                 # dynamic task mapping, not N copies
    commands = harvest.expand_input.value["bash_command"]
    seen = []
    for command in commands:
        args = _parser().parse_args(shlex.split(command)[1:])
        assert args.command == "run" and args.handler.__name__ == "_cmd_run"
        seen.append(parse(args.shard))
    assert [(s.index, s.count) for s in seen] == [(i, shards) for i in range(shards)]
    assert merge.upstream_task_ids == {"harvest"} and merge.trigger_rule == "all_done"
    args = _parser().parse_args(shlex.split(merge.bash_command)[1:])
    assert args.merge == [f"/data/out/shard-{i}-of-{shards}" for i in range(shards)] and args.into == "/data/out"
