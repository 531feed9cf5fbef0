"""The floor plan of DESIGN §2 holds: layers, no circles, small engine modules, one door to the vendors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The modules that talk to vendors by design (issue "One home per concern", acceptance 3).
VENDOR_DOORS = {"locks/dispatch.py", "locks/sweep.py", "locks/fleet.py", "providers/webhooks.py",
                "providers/registry.py"}
ENGINE_MODULE_LINES = 450
LARGE_BY_DESIGN = {"troubleshooting.py"}  # the playbook's data tables


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml")], cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_an_arrow_pointing_up_breaks_the_contracts(tmp_path):
    for name in ("portal", "locks", "providers"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    dispatch = tmp_path / "locks" / "dispatch.py"
    dispatch.write_text(dispatch.read_text().replace("import logging\n", "import logging\n\nfrom locks import actions  # noqa\n", 1))
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "locks.dispatch -> locks.actions" in result.stdout


@pytest.mark.parametrize("app", ["locks", "providers"])
def test_no_module_imports_one_that_imports_it_back(app):
    """Including imports inside functions; `if TYPE_CHECKING:` imports are for annotations only."""
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(app, exclude_type_checking_imports=True)
    circles = []
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith(app) and graph.find_shortest_chain(importer=imported, imported=module):
                circles.append(f"{module} -> {imported}")
    assert circles == []


def test_no_engine_module_outgrows_its_room():
    sizes = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "locks").glob("*.py")}
    too_big = {name: lines for name, lines in sizes.items()
               if lines > ENGINE_MODULE_LINES and name not in LARGE_BY_DESIGN}
    assert too_big == {}


def test_only_the_vendor_doors_ask_for_a_provider():
    callers = {
        str(path.relative_to(ROOT))
        for app in ("portal", "locks", "providers")
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and re.search(r"\bget_provider\(", path.read_text())
    }
    assert callers <= VENDOR_DOORS, callers - VENDOR_DOORS
    assert {"locks/dispatch.py", "locks/sweep.py", "locks/fleet.py", "providers/webhooks.py"} <= callers
