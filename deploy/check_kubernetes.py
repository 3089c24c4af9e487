"""Checks of deploy/kubernetes/, for `make lint` through deploy/check_deploy.py (offline).

1. Every manifest is valid under the Kubernetes JSON schemas that kubernetes-validate ships
   (strict: an unknown field is an error), for the oldest and the newest version it ships.
   KEDA's ScaledObject and TriggerAuthentication are custom resources the Kubernetes schemas
   do not know: they are checked against deploy/kubernetes/schemas/keda.json, the part of
   KEDA's CRDs we use. The Kustomization is checked by hand (its files exist, and every
   manifest but the HPA alternative is listed).
2. The manifests agree with each other and with the code: names they refer to exist, the
   settings are real settings, the worker's and the API's probes ask /healthz and /readyz on
   their ports, the grace period outlasts the shutdown grace, the scaler watches the events
   queue, every container runs non-root with a read-only root and no capabilities, and the
   Secret holds placeholders only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from ruamel.yaml import YAML

from worker.broker import topology
from worker.settings import Settings, parse_duration

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
KEDA_SCHEMA = KUBE / "schemas" / "keda.json"
OLDEST = "1.25.0"  # the oldest Kubernetes whose schemas the package ships
NOT_LISTED = {"hpa.yaml"}  # the alternative to the KEDA scaler: applied instead of it
IMAGE_UID = 10001  # deploy/Dockerfile's queue-hooks user
PLACEHOLDER = "CHANGE-ME"

Doc = dict[str, Any]


def load() -> dict[str, list[Doc]]:
    yaml = YAML(typ="safe")
    return {
        path.name: [doc for doc in yaml.load_all(path.read_text(encoding="utf-8")) if doc]
        for path in sorted(KUBE.glob("*.yaml"))
    }


# -- 1. schemas ------------------------------------------------------------------------------
def check_schemas(files: dict[str, list[Doc]]) -> list[str]:
    keda = json.loads(KEDA_SCHEMA.read_text(encoding="utf-8"))
    problems: list[str] = []
    for name, doc in _docs(files):
        kind = doc.get("kind")
        where = f"kubernetes/{name}: {kind}/{doc.get('metadata', {}).get('name')}"
        if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
            if kind not in keda["$defs"]:
                problems.append(f"{where}: not a KEDA kind that {KEDA_SCHEMA.name} describes")
                continue
            # The one definition of this kind (the schema's oneOf would only say "none fits").
            one = jsonschema.Draft202012Validator({**keda, "oneOf": [{"$ref": f"#/$defs/{kind}"}]})
            problems += [f"{where}: {_path(e)}{e.message}" for e in one.iter_errors(doc)]
        elif doc.get("kind") == "Kustomization":
            problems += check_kustomization(name, doc, files)
        else:
            for version in sorted({OLDEST, kubernetes_validate.latest_version()}):
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    problems.append(f"{where}: Kubernetes {version}: {_path(e)}{e.message}")
                except kubernetes_validate.SchemaNotFoundError:
                    problems.append(f"{where}: no Kubernetes {version} schema for this kind")
    return problems


def _path(error: jsonschema.ValidationError) -> str:
    return "".join(f"{p}." for p in error.absolute_path).rstrip(".") + ": " if error.path else ""


def check_kustomization(name: str, doc: Doc, files: dict[str, list[Doc]]) -> list[str]:
    listed = set(doc.get("resources", []))
    problems = [f"kubernetes/{name}: lists {r}, which does not exist"
                for r in sorted(listed - files.keys())]  # fmt: skip
    for missing in sorted(files.keys() - listed - NOT_LISTED - {name}):
        problems.append(f"kubernetes/{name}: does not list {missing}")
    return problems


# -- 2. what the manifests say ---------------------------------------------------------------
def _docs(files: dict[str, list[Doc]]) -> Iterator[tuple[str, Doc]]:
    for name, docs in files.items():
        for doc in docs:
            yield name, doc


def _find(files: dict[str, list[Doc]], kind: str, name: str) -> Doc:
    for _file, doc in _docs(files):
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    return {}


def _pod_specs(files: dict[str, list[Doc]]) -> Iterator[tuple[str, Doc]]:
    for _file, doc in _docs(files):
        if doc.get("kind") in ("Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def check_settings(files: dict[str, list[Doc]]) -> list[str]:
    """Every key of the ConfigMap and Secret is a setting (a typo would be ignored silently)."""
    known = {f"QUEUE_HOOKS_{field.upper()}" for field in Settings.model_fields}
    problems = []
    for kind, name, field in (
        ("ConfigMap", "queue-hooks-settings", "data"),
        ("Secret", "queue-hooks-secrets", "stringData"),
    ):
        doc = _find(files, kind, name)
        if not doc:
            problems.append(f"kubernetes: no {kind} {name}")
        for key, value in doc.get(field, {}).items():
            if key not in known and not key.startswith("KEDA_"):
                problems.append(f"kubernetes: {kind} {name} sets {key}, which is no setting")
            if kind == "Secret" and PLACEHOLDER not in str(value):
                problems.append(f"kubernetes: Secret {name} {key} must hold {PLACEHOLDER} only")
    return problems


def check_pods(files: dict[str, list[Doc]]) -> list[str]:
    problems = []
    for where, spec in _pod_specs(files):
        pod = spec.get("securityContext", {})
        if not pod.get("runAsNonRoot") or pod.get("runAsUser") != IMAGE_UID:
            problems.append(f"kubernetes: {where} must run as non-root user {IMAGE_UID}")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):  # fmt: skip
                problems.append(f"kubernetes: {where}: read-only root, no escalation, drop ALL")
            if "requests" not in c.get("resources", {}):
                problems.append(f"kubernetes: {where}: resource requests missing")
            for source in c.get("envFrom", []):
                for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if ref in source and not _find(files, kind, source[ref]["name"]):
                        problems.append(f"kubernetes: {where} reads {kind} {source[ref]['name']}")
    return problems


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


def check_worker(files: dict[str, list[Doc]]) -> list[str]:
    problems = []
    worker = _find(files, "Deployment", "queue-hooks-worker")
    config = _find(files, "ConfigMap", "queue-hooks-settings").get("data", {})
    spec = worker["spec"]["template"]["spec"]
    container = spec["containers"][0]
    port = int(config.get("QUEUE_HOOKS_METRICS_PORT", _default("metrics_port")))
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != port:
            problems.append(f"kubernetes: the worker's {probe} must ask {path} on port {port}")
    grace = parse_duration(config.get("QUEUE_HOOKS_SHUTDOWN_GRACE", _default("shutdown_grace")))
    if spec.get("terminationGracePeriodSeconds", 30) <= grace:
        problems.append("kubernetes: the worker's terminationGracePeriodSeconds must exceed "
                        f"QUEUE_HOOKS_SHUTDOWN_GRACE ({grace:g} s)")  # fmt: skip
    if container.get("args") != ["run"]:
        problems.append("kubernetes: the worker Deployment must run `queue-hooks run`")
    problems += _check_scaler(files)
    return problems


def _check_scaler(files: dict[str, list[Doc]]) -> list[str]:
    problems = []
    scaled = _find(files, "ScaledObject", "queue-hooks-worker")
    if scaled.get("spec", {}).get("scaleTargetRef", {}).get("name") != "queue-hooks-worker":
        problems.append("kubernetes: the ScaledObject must scale the worker Deployment")
    for trigger in scaled.get("spec", {}).get("triggers", []):
        if trigger["metadata"].get("queueName") != topology.EVENTS_QUEUE:
            problems.append(f"kubernetes: the ScaledObject must watch {topology.EVENTS_QUEUE}")
        auth_name = trigger.get("authenticationRef", {}).get("name", "")
        auth = _find(files, "TriggerAuthentication", auth_name)
        secret = _find(files, "Secret", "queue-hooks-secrets").get("stringData", {})
        for ref in auth.get("spec", {}).get("secretTargetRef", []):
            if ref["key"] not in secret:
                problems.append(f"kubernetes: {auth_name} reads {ref['key']}, not in the Secret")
    return problems


def check_api(files: dict[str, list[Doc]]) -> list[str]:
    problems = []
    api = _find(files, "Deployment", "queue-hooks-api")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in api.get("env", [])}
    if api.get("args") != ["api"] or env.get("QUEUE_HOOKS_API_HOST") != "0.0.0.0":
        problems.append("kubernetes: the API Deployment runs `queue-hooks api` on 0.0.0.0")
    service = _find(files, "Service", "queue-hooks-api").get("spec", {})
    ports = {p["name"]: p["containerPort"] for p in api.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = api.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path or str(port) != env.get("QUEUE_HOOKS_API_PORT"):
            problems.append(f"kubernetes: the API's {probe} must ask {path} on the API's port")
    for port in service.get("ports", []):
        target = ports.get(port["targetPort"], port["targetPort"])
        if str(target) != env.get("QUEUE_HOOKS_API_PORT"):
            problems.append(f"kubernetes: the API Service sends to {target}, not the API's port")
    return problems


def check_selectors(files: dict[str, list[Doc]]) -> list[str]:
    """Each PodDisruptionBudget and the Service select the pods of one Deployment."""
    labels = [doc["spec"]["template"]["metadata"]["labels"] for _f, doc in _docs(files)
              if doc.get("kind") == "Deployment"]  # fmt: skip
    problems = []
    for _file, doc in _docs(files):
        if doc.get("kind") in ("PodDisruptionBudget", "Service"):
            spec = doc["spec"]
            want = spec.get("selector", {}).get("matchLabels", spec.get("selector", {}))
            if not any(want.items() <= pod.items() for pod in labels):
                problems.append(f"kubernetes: {doc['kind']}/{doc['metadata']['name']} "
                                "selects no Deployment's pods")  # fmt: skip
    return problems


def problems() -> list[str]:
    files = load()
    return [
        *check_schemas(files),
        *check_settings(files),
        *check_pods(files),
        *check_worker(files),
        *check_api(files),
        *check_selectors(files),
    ]
