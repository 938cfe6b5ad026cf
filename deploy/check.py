"""``make deploy-check``: the deployment files are valid and agree with each other and with harvester.

Every document of deploy/kubernetes/*.yaml is validated against the Kubernetes JSON schemas
(``kubernetes-validate``, strict: unknown fields are errors; its schemas ship inside the package,
so this needs no network, and ``make deploy-check`` runs it with none). Then what a schema cannot
see: the CronJob runs an Indexed Job whose completions, parallelism and ``--shards N`` agree; its
arguments are a command harvester takes; the ConfigMap's harvest.toml is a valid configuration
whose paths are on the data volume; the Secret has a key for every token variable it names;
every name the pod refers to exists; the containers have resource requests. Run with the venv of
``make deploy-check`` (kubernetes-validate and PyYAML, harvester installed).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import kubernetes_validate
import yaml

from harvester.cli import _parser
from harvester.config import parse_config

KUBERNETES = Path(__file__).resolve().parent / "kubernetes"
VERSION = "1.33"
"""The oldest Kubernetes the files must work on: backoffLimitPerIndex and podFailurePolicy are GA there."""


def documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def validate(docs: list[tuple[str, dict]]) -> list[str]:
    problems = []
    for name, doc in docs:
        for version in (VERSION, kubernetes_validate.latest_version()):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                problems.append(f"{name}: {doc['kind']} {doc['metadata']['name']} (Kubernetes {version}): "
                                f"{path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                problems.append(f"{name}: {exc}")
    return problems


def consistent(docs: list[tuple[str, dict]]) -> list[str]:
    """What the schemas cannot see: the files agree with each other and with harvester."""
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    cronjobs = by_kind.get("CronJob", {})
    if not cronjobs:
        return ["no CronJob in deploy/kubernetes"]
    for name, cronjob in cronjobs.items():
        problems += _cronjob(name, cronjob, by_kind)
    return problems


def _cronjob(name: str, cronjob: dict, by_kind: dict[str, dict[str, dict]]) -> list[str]:
    problems = []
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    where = f"CronJob {name}"
    if job.get("completionMode") != "Indexed":
        problems.append(f"{where}: completionMode is {job.get('completionMode')!r}; expected Indexed")
    container = next(c for c in pod["containers"] if c["name"] == "harvester")
    args = _parser().parse_args(container["args"])
    if args.command != "run" or args.shards is None:
        problems.append(f"{where}: args {shlex.join(container['args'])}; expected harvester run ... --shards N")
    n = args.shards
    if not job.get("completions") == job.get("parallelism") == n:
        problems.append(f"{where}: completions {job.get('completions')}, parallelism {job.get('parallelism')} and "
                        f"--shards {n} differ; expected one N (each index is a shard)")
    for c in pod["containers"]:
        if not c.get("resources", {}).get("requests", {}).get("memory"):
            problems.append(f"{where}: container {c['name']} has no memory request")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    for volume in volumes.values():
        if (claim := volume.get("persistentVolumeClaim")) and claim["claimName"] not in by_kind.get(
                "PersistentVolumeClaim", {}):
            problems.append(f"{where}: volume {volume['name']} claims {claim['claimName']!r}, which no file defines")
    config_map = next((v["configMap"]["name"] for v in volumes.values() if "configMap" in v), None)
    secrets = [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]
    if not secrets:
        problems.append(f"{where}: no envFrom secretRef; expected the tokens from a Secret")
    keys = {k for s in secrets for k in _secret(by_kind, s, where, problems)}
    if config_map is None or config_map not in by_kind.get("ConfigMap", {}):
        return [*problems, f"{where}: its config volume names no ConfigMap that a file defines"]
    toml = by_kind["ConfigMap"][config_map]["data"]["harvest.toml"]
    config_path = args.config
    problems += _config(where, toml, config_path, mounts, keys)
    return problems


def _secret(by_kind: dict[str, dict[str, dict]], name: str, where: str, problems: list[str]) -> set[str]:
    secret = by_kind.get("Secret", {}).get(name)
    if secret is None:
        problems.append(f"{where}: envFrom names the Secret {name!r}, which no file defines")
        return set()
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


def _config(where: str, toml: str, config_path: str, mounts: dict[str, str], keys: set[str]) -> list[str]:
    import tomllib
    from datetime import date

    problems = []
    if not any(config_path.startswith(path.rstrip("/") + "/") for path in mounts.values()):
        problems.append(f"{where}: --config {config_path} is on no mounted volume")
    config = parse_config(tomllib.loads(toml), path="configmap harvest.toml", env={}, check_tokens=False,
                          today=date(2026, 12, 1))
    missing = sorted(set(config.token_keys()) - keys)
    if missing:
        problems.append(f"{where}: the Secret has no key for the token variables {', '.join(missing)}")
    data = [path for name, path in mounts.items() if name == "data"]
    for what, path in (("[output] path", config.output.path), ("[state] path", config.state.path)):
        if not data or not path.startswith(data[0].rstrip("/") + "/"):
            problems.append(f"{where}: {what} {path} is not on the data volume ({data})")
    return problems


def main() -> int:
    docs = documents()
    problems = validate(docs) + consistent(docs)
    for problem in problems:
        print(f"deploy-check: {problem}", file=sys.stderr)
    kinds = ", ".join(f"{doc['kind']} {doc['metadata']['name']}" for _, doc in docs)
    if not problems:
        print(f"deploy-check: {len(docs)} Kubernetes documents valid (strict, {VERSION} and "
              f"{kubernetes_validate.latest_version()}) and consistent: {kinds}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
