"""The layers contract (pyproject.toml's [tool.importlinter], docs/architecture.md): core imports
no app, tenants import no domain app, no app imports the demo, the explain UI or config, and no
new import loop appears inside a package. `make lint` runs the same check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "core", "customers", "catalog", "events", "ranking", "merchandising")
PACKAGES += ("explain", "demo")
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )


def test_the_code_keeps_its_layers_and_has_no_new_import_loops() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def copy_of_the_code(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_upward_import_from_core_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    health = root / "core" / "health.py"
    health.write_text(health.read_text() + "\nfrom ranking.models import SignalVersion\n")
    result = lint_imports(root)
    assert result.returncode == 1
    assert "core.health -> ranking.models" in result.stdout


def test_a_new_import_loop_inside_a_package_is_refused(tmp_path: Path) -> None:
    root = copy_of_the_code(tmp_path)
    schema = root / "ranking" / "signals" / "schema.py"
    schema.write_text(schema.read_text() + "\nfrom ranking.signals import refresh\n")
    result = lint_imports(root)
    assert result.returncode == 1
    assert "No cycles are allowed in ranking.signals" in result.stdout
