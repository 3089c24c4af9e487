"""Checks of the container files, for `make lint` (no Docker engine needed).

1. docker-compose.yml is valid under the Compose Specification's JSON schema (the copy that
   check-jsonschema ships, so this works offline).
2. deploy/rabbitmq/definitions.json declares exactly what the worker declares with the default
   settings (worker.broker.topology), and its user is the one compose's AMQP URL logs in with.
3. deploy/Dockerfile and docker-compose.yml only reference things that exist: files copied or
   mounted, the entry point, the fixtures `migrate` loads, the worker's health port.
4. deploy/kubernetes/ against the Kubernetes schemas and the code (deploy/check_kubernetes.py).

    python deploy/check_deploy.py                      # check; exit 1 with one line per problem
    python deploy/check_deploy.py --write-definitions  # regenerate the topology in definitions.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy import check_kubernetes  # noqa: E402
from worker.broker import topology  # noqa: E402
from worker.settings import Settings  # noqa: E402

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
VHOST = "/"


# -- 1. the compose file against the Compose Specification ------------------------------------
def check_compose_schema() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return []
    return [f"{COMPOSE.name}: {line}" for line in result.stdout.splitlines() if line.strip()]


# -- 2. definitions.json against the topology -------------------------------------------------
def _default(name: str) -> Any:
    """A setting's default, never the environment's value (Settings() would read .env)."""
    return Settings.model_fields[name].default


def expected_topology() -> dict[str, list[dict[str, Any]]]:
    exchange: str = _default("exchange")
    queues = [
        {"name": spec.name, "vhost": VHOST, "durable": True, "auto_delete": False,
         "arguments": spec.arguments}
        for spec in topology.queue_specs(_default("retry_delays"))
    ]  # fmt: skip
    return {
        "queues": queues,
        "exchanges": [
            {
                "name": exchange,
                "vhost": VHOST,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        ],
        "bindings": [
            {
                "source": exchange,
                "vhost": VHOST,
                "destination": topology.EVENTS_QUEUE,
                "destination_type": "queue",
                "routing_key": topology.BINDING_KEY,
                "arguments": {},
            }
        ],
    }


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {json.dumps([i.get("name"), i.get("source"), i.get("destination")]): i for i in items}


def check_definitions(definitions: dict[str, Any]) -> list[str]:
    problems = []
    for section, want in expected_topology().items():
        have = _by_name(definitions.get(section, []))
        for key, item in _by_name(want).items():
            if key not in have:
                problems.append(f"definitions.json: {section} lacks {item}")
            elif have[key] != item:
                problems.append(f"definitions.json: {section} has {have[key]}, want {item}")
        for key in have.keys() - _by_name(want).keys():
            problems.append(f"definitions.json: {section} has {have[key]}, the worker does not")
    if not any(v.get("name") == VHOST for v in definitions.get("vhosts", [])):
        problems.append(f"definitions.json: no vhost {VHOST!r}")
    return problems


def password_matches(user: dict[str, Any], password: str) -> bool:
    """rabbit_password_hashing_sha256: base64(salt[4] + sha256(salt + password))."""
    raw = base64.b64decode(user.get("password_hash", ""))
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


def check_broker_login(definitions: dict[str, Any], amqp_url: str) -> list[str]:
    url = urlsplit(amqp_url)
    name, password = unquote(url.username or ""), unquote(url.password or "")
    users = {u["name"]: u for u in definitions.get("users", [])}
    if name not in users:
        return [f"definitions.json: no user {name!r}, which the worker's AMQP URL uses"]
    problems = []
    if not password_matches(users[name], password):
        problems.append(f"definitions.json: user {name!r} has another password than compose's")
    if not any(p.get("user") == name and p.get("vhost") == VHOST
               for p in definitions.get("permissions", [])):  # fmt: skip
        problems.append(f"definitions.json: user {name!r} has no permissions on {VHOST!r}")
    return problems


# -- 3. what the Dockerfile and compose refer to ----------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def check_dockerfile(pyproject: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    copied: set[str] = set()
    steps = dockerfile_instructions()
    for word, rest in steps:
        if word == "COPY" and "--from=" not in rest:
            *sources, _dest = shlex.split(rest)
            for source in sources:
                copied.add(source.rstrip("/"))
                if not (ROOT / source).exists():
                    problems.append(f"Dockerfile: COPY {source}: no such file in the repository")
    for source in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]:
        if source not in copied:
            problems.append(f"Dockerfile: {source} is not copied, but the wheel includes it")
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        if package not in copied:
            problems.append(f"Dockerfile: the package {package} is not copied")
    entry = [json.loads(rest) for word, rest in steps if word == "ENTRYPOINT"]
    scripts = pyproject["project"]["scripts"]
    if not entry or entry[-1][0] not in scripts:
        problems.append(f"Dockerfile: ENTRYPOINT must be one of {sorted(scripts)}")
    users = [rest for word, rest in steps if word == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("Dockerfile: the image must end with a non-root USER")
    bases = [rest.split()[0] for word, rest in steps if word == "FROM"]
    if not bases or not bases[-1].startswith("python:3.11-slim"):
        problems.append("Dockerfile: the final image must be python:3.11-slim")
    return problems


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


def check_compose_refs(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services: dict[str, Any] = compose["services"]
    for name, service in services.items():
        build = service.get("build")
        if isinstance(build, dict):
            context = ROOT / build.get("context", ".")
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(f"compose: {name}: no Dockerfile at {build}")
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")) and not (ROOT / source).exists():
                problems.append(f"compose: {name}: mounts {source}, which does not exist")
    command = services.get("migrate", {}).get("command", [])
    fixtures = [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == "--fixtures"]
    for fixture in fixtures:
        if not (ROOT / "deploy" / "fixtures" / f"{fixture}.sql").is_file():
            problems.append(f"compose: migrate loads fixture {fixture!r}: no such fixture")
    worker = services.get("worker", {})
    port = _env(worker).get("QUEUE_HOOKS_METRICS_PORT")
    health = " ".join(worker.get("healthcheck", {}).get("test", []))
    if not port or f":{port}/readyz" not in health:
        problems.append("compose: the worker's healthcheck must ask /readyz on its metrics port")
    if _env(worker).get("QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS") != "true":
        problems.append("compose: the worker needs QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true")
    problems += _check_receiver_url(services, fixtures)
    problems += _check_api(services.get("api"))
    return problems


def _check_api(api: dict[str, Any] | None) -> list[str]:
    """The admin API (issue 11): `queue-hooks api` listening on all interfaces of its
    container, on the port it publishes and its healthcheck asks."""
    if api is None:
        return ["compose: no `api` service (queue-hooks api)"]
    problems = []
    if api.get("command") != ["api"]:
        problems.append('compose: the api service must run command ["api"]')
    env, port = _env(api), _env(api).get("QUEUE_HOOKS_API_PORT", "8080")
    if env.get("QUEUE_HOOKS_API_HOST") != "0.0.0.0":
        problems.append("compose: the api needs QUEUE_HOOKS_API_HOST=0.0.0.0 to be reachable")
    if not any(str(p).endswith(f":{port}") for p in api.get("ports", [])):
        problems.append(f"compose: the api service must publish its port {port}")
    if f"127.0.0.1:{port}/readyz" not in " ".join(api.get("healthcheck", {}).get("test", [])):
        problems.append(f"compose: the api's healthcheck must ask /readyz on its port {port}")
    return problems


def _check_receiver_url(services: dict[str, Any], fixtures: list[str]) -> list[str]:
    """The URL the fixtures leave in place must name the receiver service and its port."""
    urls: list[str] = []
    for fixture in fixtures:
        path = ROOT / "deploy" / "fixtures" / f"{fixture}.sql"
        if path.is_file():
            urls += re.findall(r"SET url = '([^']+)'", path.read_text(encoding="utf-8"))
    if not urls:
        return ["compose: no fixture points the demo schema at the demo-receiver service"]
    target = urlsplit(urls[-1])
    receiver = services.get(target.hostname or "", {})
    if f"--port {target.port}" not in " ".join(receiver.get("command", [])):
        return [f"compose: the demo schema calls {urls[-1]}, but no service listens there"]
    return []


def main(argv: list[str]) -> int:
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    if argv[1:] == ["--write-definitions"]:
        definitions.update(expected_topology())
        DEFINITIONS.write_text(json.dumps(definitions, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {DEFINITIONS.relative_to(ROOT)}")
        return 0
    compose = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    worker_env = _env(compose["services"]["worker"])
    problems = [
        *check_compose_schema(),
        *check_definitions(definitions),
        *check_broker_login(definitions, worker_env.get("QUEUE_HOOKS_AMQP_URL", "")),
        *check_dockerfile(pyproject),
        *check_compose_refs(compose),
        *check_kubernetes.problems(),
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(
            "deploy files OK: compose schema, RabbitMQ definitions, Dockerfile references, "
            "Kubernetes manifests (schemas, KEDA's from deploy/kubernetes/schemas/keda.json)"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
