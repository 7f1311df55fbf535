"""The layers of docs/architecture.md are enforced: ``lint-imports`` (``.importlinter``, run by ./test)
keeps them, and breaking one on purpose, in a copy of the code, is caught with the chain that breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def copy_of_the_code(tmp_path: Path) -> Path:
    for name in ("apps", "workflow_engine", "devservices"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=where, capture_output=True, text=True, timeout=240, check=False
    )


def add_import(module: Path, line: str) -> None:
    text = module.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text, f"{module} has no __future__ import to put the breach after"
    module.write_text(text.replace(marker, marker + "\n" + line + "  # noqa\n", 1))


def test_the_code_keeps_every_contract() -> None:
    found = lint(ROOT)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "0 broken" in found.stdout


@pytest.mark.parametrize(
    ("module", "breach", "contract"),
    [
        # the cluster must know nothing of executions
        ("apps/cluster/coordinator.py", "from apps.workflows.models import Execution", "Apps point down"),
        # the workflows app must not reach up into the schedules app
        (
            "apps/workflows/services/definitions.py",
            "from apps.schedules.services import schedules",
            "Apps point down",
        ),
        # services never import their adapters (the Celery tasks)
        ("apps/workflows/services/dispatch.py", "from apps.workflows import tasks", "Inside workflows"),
        # the pure engine loads without Django
        ("apps/workflows/engine/graph.py", "import django.conf", "are pure"),
        # the platform imports no app
        ("workflow_engine/messaging.py", "from apps.cluster import hooks", "The platform"),
        # the runtime never imports the development servers
        ("apps/cluster/processes.py", "import devservices", "never imports the development servers"),
    ],
)
def test_breaking_a_layer_on_purpose_is_caught(
    tmp_path: Path, module: str, breach: str, contract: str
) -> None:
    code = copy_of_the_code(tmp_path)
    add_import(code / module, breach)
    found = lint(code)
    assert found.returncode != 0, found.stdout
    broken = found.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, found.stdout
