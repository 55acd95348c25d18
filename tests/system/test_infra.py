"""compose.yaml, infra/Dockerfile and the Kubernetes manifests, checked statically (no Docker here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from fieldcheck.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = {f"FIELDCHECK_{name.upper()}" for name in Settings.model_fields}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _fieldcheck_variables(environment: dict[str, Any] | list[str]) -> set[str]:
    names = environment.keys() if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
    return {name for name in names if name.startswith("FIELDCHECK_")}


def test_compose_has_the_scale_out_topology() -> None:
    services = _compose()["services"]
    for name in ("api", "worker", "scheduler", "postgres", "rabbitmq", "minio", "minio-bucket", "migrate"):
        assert name in services, name
    for name in ("postgres", "rabbitmq", "minio", "api"):
        assert "test" in services[name]["healthcheck"], name
    assert services["api"]["command"][:2] == ["fieldcheck", "serve"]
    assert services["worker"]["command"] == ["fieldcheck", "worker"]
    assert services["scheduler"]["command"] == ["fieldcheck", "scheduler"]
    assert services["migrate"]["command"] == ["fieldcheck", "db", "upgrade"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "mc mb" in " ".join(services["minio-bucket"]["command"])
    for name in ("api", "worker", "scheduler", "migrate"):
        assert services[name]["build"]["dockerfile"] == "infra/Dockerfile"


def test_every_fieldcheck_variable_in_compose_is_a_setting() -> None:
    services = _compose()["services"]
    seen: set[str] = set()
    for name in ("api", "worker", "scheduler", "migrate"):
        variables = _fieldcheck_variables(services[name]["environment"])
        assert variables, name
        seen |= variables
    assert seen <= SETTING_NAMES, seen - SETTING_NAMES
    env = services["api"]["environment"]
    assert env["FIELDCHECK_DATABASE_URL"].startswith("postgresql://")
    assert env["FIELDCHECK_BROKER_URL"].startswith("amqp://")
    assert env["FIELDCHECK_S3_BUCKET"] == "fieldcheck"
    assert "FIELDCHECK_TOKEN_SECRET" not in env  # generated into the shared volume, never written here


def test_settings_in_compose_parse() -> None:
    env = _compose()["services"]["api"]["environment"]
    resolved = {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}
    values = {k.removeprefix("FIELDCHECK_").lower(): v for k, v in resolved.items()}
    settings = Settings(**values)
    assert settings.broker_kind == "rabbitmq"
    assert settings.storage_kind == "s3"
    assert not settings.is_sqlite
    assert settings.run_scheduler is False
    assert settings.runs_inprocess_worker is False


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (ROOT / "infra" / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", text, re.MULTILINE)
    assert len(stages) >= 2
    assert "COPY --from=build" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text
    for copied in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        for source in copied.split()[:-1]:
            assert (ROOT / source).exists(), source


def test_kubernetes_manifests() -> None:
    documents = [d for d in yaml.safe_load_all((ROOT / "infra" / "k8s" / "fieldcheck.yaml").read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert ("Deployment", "fieldcheck-api") in kinds
    assert ("Deployment", "fieldcheck-worker") in kinds
    assert ("Deployment", "fieldcheck-scheduler") in kinds
    assert ("Job", "fieldcheck-migrate") in kinds
    config = next(d for d in documents if d["kind"] == "ConfigMap")
    assert set(config["data"]) <= SETTING_NAMES
    parsed = Settings(**{k.removeprefix("FIELDCHECK_").lower(): v for k, v in config["data"].items()})
    assert parsed.trusted_proxies == ["10.0.0.0/8"]  # the ingress, whose X-Forwarded-For is believed
    for document in documents:
        if document["kind"] in ("Deployment", "Job"):
            spec = document["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["containers"][0]["command"][0] == "fieldcheck"


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in SETTING_NAMES if name not in readme)
    assert missing == []


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/run", "./scripts/test"]
    assert "exec ./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_install_takes_the_locked_versions() -> None:
    """Both commands and the image install uv.lock's versions, with the same pinned uv."""
    import tomllib

    helper = (ROOT / "scripts" / "_venv.sh").read_text()
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    pinned = re.search(r'^UV_VERSION="([0-9.]+)"', helper, re.MULTILINE)
    assert pinned is not None
    assert f'uv=={pinned.group(1)}"' in dockerfile
    assert (
        "sync --frozen" in helper and "uv export --frozen" in dockerfile and "--require-hashes" in dockerfile
    )
    for script in ("run", "test"):
        assert re.search(r"^sync\b", (ROOT / "scripts" / script).read_text(), re.MULTILINE), script
    assert "lock --check" in (ROOT / "scripts" / "test").read_text()
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {package["name"] for package in lock["package"]}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = project["project"]["dependencies"] + project["dependency-groups"]["dev"]
    names = {
        re.split(r"[\[<>=;!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in wanted
    }
    assert names <= locked, names - locked
