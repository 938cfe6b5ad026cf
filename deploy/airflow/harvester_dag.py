"""An Airflow DAG: the nightly harvest as one mapped task per shard, then the merge of their outputs.

Dynamic task mapping (``.expand``) makes one ``harvest`` task instance per shard, ``--shard I/N``
for I from 0 to N-1 (its ``map_index``), each retried on its own; ``merge`` runs once they are all
done (``all_done``: a failed shard keeps its last published output, the union still has the
others' new one). The workers need the ``harvester`` command (``pip install harvester``, or the
image of deploy/Dockerfile with the KubernetesPodOperator instead of BashOperator) and the token
variables the config names in their environment (an Airflow secrets backend can set them).
Each shard keeps its own state file and output directory under the config's paths, so the
workers must share those paths (one volume) or each shard must always run on the same worker.

Settings come from the environment of the scheduler and workers: ``HARVESTER_CONFIG`` (the TOML
file), ``HARVESTER_OUTPUT`` (its ``[output] path``), ``HARVESTER_SHARDS`` (N, default 4).
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

CONFIG = os.environ.get("HARVESTER_CONFIG", "/etc/harvester/harvest.toml")
OUTPUT = os.environ.get("HARVESTER_OUTPUT", "/data/out")
SHARDS = int(os.environ.get("HARVESTER_SHARDS", "4"))


def shard_commands(config: str = CONFIG, shards: int = SHARDS) -> list[str]:
    """One ``harvester run`` per shard: the list the harvest task is mapped over."""
    return [f"harvester run --config {shlex.quote(config)} --shard {index}/{shards}" for index in range(shards)]


def merge_command(output: str = OUTPUT, shards: int = SHARDS) -> str:
    outputs = " ".join(shlex.quote(f"{output}/shard-{index}-of-{shards}") for index in range(shards))
    return f"harvester manifest --merge {outputs} --into {shlex.quote(output)}"


with DAG(
    dag_id="harvester_nightly",
    description="Instagram insights: one harvest task per shard, then the union of their outputs",
    schedule="30 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,              # a shard's state file takes one run at a time
    tags=["harvester"],
) as dag:
    harvest = BashOperator.partial(
        task_id="harvest",
        append_env=True,            # the token variables of the worker's environment
        retries=2,
        retry_delay=timedelta(minutes=5),
        execution_timeout=timedelta(hours=6),
        max_active_tis_per_dag=SHARDS,
    ).expand(bash_command=shard_commands())
    merge = BashOperator(task_id="merge", bash_command=merge_command(), trigger_rule="all_done")
    harvest >> merge
