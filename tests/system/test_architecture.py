"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they catch what they are
for: a copy of the package given the import cycle fieldcheck once had (webhooks, through a
function-local import, reaching back into exports) breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(tree / "pyproject.toml")],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold_and_catch_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout

    with (tmp_path / "src" / "fieldcheck" / "webhooks" / "service.py").open("a") as module:
        module.write("\n\ndef _late() -> None:\n    from fieldcheck.exports import service  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0
    for contract in (
        "Modules depend one way",
        "No import cycle",
        "The ledger and webhooks import no domain",
    ):
        assert f"{contract}" in broken.stdout.split("Broken contracts")[-1], broken.stdout
