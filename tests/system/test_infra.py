"""compose.yaml, infra/Dockerfile and the Kubernetes manifests, checked statically (no Docker here)."""

from __future__ import annotations

import re
import tomllib
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
    for name in (
        "api",
        "worker",
        "scheduler",
        "postgres",
        "rabbitmq",
        "redis",
        "s3",
        "storage-init",
        "migrate",
    ):
        assert name in services, name
    for name in ("postgres", "rabbitmq", "redis", "s3", "api", "worker", "scheduler"):
        assert "test" in services[name]["healthcheck"], name
    assert services["api"]["command"][:2] == ["fieldcheck", "serve"]
    # Workers and the scheduler serve metrics, which their health checks read.
    assert services["worker"]["command"] == ["fieldcheck", "worker", "--metrics-port", "9100"]
    assert services["scheduler"]["command"] == ["fieldcheck", "scheduler", "--metrics-port", "9100"]
    for name in ("worker", "scheduler"):
        assert "127.0.0.1:9100/metrics" in " ".join(services[name]["healthcheck"]["test"]), name
    # The request limits are shared by every API process.
    assert services["api"]["environment"]["FIELDCHECK_RATE_LIMIT_REDIS_URL"] == "redis://redis:6379/0"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["fieldcheck", "db", "upgrade"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    # The bucket and its browser rule are made before any fieldcheck process starts.
    assert services["storage-init"]["command"] == ["fieldcheck", "storage", "init"]
    assert services["storage-init"]["depends_on"]["s3"]["condition"] == "service_healthy"
    for name in ("api", "worker", "scheduler"):
        assert services[name]["depends_on"]["storage-init"]["condition"] == "service_completed_successfully"
    # The S3 gateway's admin key is the one fieldcheck signs with.
    s3_env = services["s3"]["environment"]
    api_env = services["api"]["environment"]
    assert s3_env["AWS_ACCESS_KEY_ID"] == api_env["FIELDCHECK_S3_ACCESS_KEY_ID"]
    assert s3_env["AWS_SECRET_ACCESS_KEY"] == api_env["FIELDCHECK_S3_SECRET_ACCESS_KEY"]
    assert api_env["FIELDCHECK_S3_ENDPOINT_URL"] == "http://s3:8333"
    assert "8333:8333" in services["s3"]["ports"]
    for name in ("api", "worker", "scheduler", "migrate", "storage-init"):
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


# Images whose projects no longer publish them (MinIO's community images were removed from Docker
# Hub in September 2026 after the project went source-only): a fresh machine could not pull them.
UNMAINTAINED_IMAGES = ("minio/minio", "minio/mc", "bitnami/minio", "quay.io/minio/minio", "quay.io/minio/mc")
VERSION_TAG = re.compile(r"^\d+(\.\d+)*([.-][A-Za-z0-9.]+)*$")


def _images() -> list[tuple[str, str]]:
    """(where, image) for every image compose, the manifests and the Dockerfile name."""
    found = [
        (f"compose {name}", str(s["image"])) for name, s in _compose()["services"].items() if "image" in s
    ]
    found += [("compose x-fieldcheck", str(_compose()["x-fieldcheck"]["image"]))]
    for document in yaml.safe_load_all((ROOT / "infra" / "k8s" / "fieldcheck.yaml").read_text()):
        if document and document["kind"] in ("Deployment", "Job"):
            for container in document["spec"]["template"]["spec"]["containers"]:
                found.append((f"k8s {document['metadata']['name']}", str(container["image"])))
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    found += [("Dockerfile", image) for image in re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)]
    return found


def pin_problem(image: str) -> str | None:
    """Why an image may not be used (no version, `latest`, a project that stopped publishing it)."""
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    if not tag or tag == "latest" or not VERSION_TAG.match(tag):
        return "not pinned to a version"
    if name in UNMAINTAINED_IMAGES:
        return "no longer published"
    return None


def test_every_image_is_pinned_to_a_version_and_maintained() -> None:
    images = _images()
    assert len(images) >= 9, images
    problems = [(where, image, pin_problem(image)) for where, image in images if pin_problem(image)]
    assert problems == []
    # fieldcheck's own image is tagged with its version, everywhere.
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    own = {image for _, image in images if image.rpartition(":")[0] == "fieldcheck"}
    assert own == {f"fieldcheck:{version}"}, own


def test_the_pin_check_refuses_what_it_should() -> None:
    """The rule above, on images it must refuse (so it cannot pass by accident)."""
    refused = {
        "minio/minio:RELEASE.2025-04-22T22-12-26Z": "not pinned to a version",
        "minio/mc:2025.1.1": "no longer published",
        "postgres": "not pinned to a version",
        "postgres:latest": "not pinned to a version",
        "rabbitmq:management": "not pinned to a version",
        "localhost:5000/fieldcheck": "not pinned to a version",
    }
    for image, why in refused.items():
        assert pin_problem(image) == why, image
    assert pin_problem("chrislusf/seaweedfs:4.43") is None
    assert pin_problem("localhost:5000/fieldcheck:0.1.0") is None


def test_the_compose_database_has_postgis() -> None:
    """Discovery's nearest-neighbour search needs PostGIS; the topology's PostgreSQL ships it."""
    image = str(_compose()["services"]["postgres"]["image"])
    assert image.startswith("postgis/postgis:") and pin_problem(image) is None, image
