"""The package's four rooms import one way, and the cluster package carries only what a job needs."""

from __future__ import annotations

import ast
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lib" / "eventlake"
ROOMS = ("pipeline", "runtime", "ops", "local")

# What each room may import from eventlake. pipeline is the records' path, runtime runs it (sessions, config,
# the runner and its listeners), ops reads and reports, local is for development only.
MAY_IMPORT = {
    "pipeline": {"pipeline", "runtime"},
    "runtime": {"runtime"},
    "ops": {"ops", "pipeline", "runtime"},
    "local": {"local", "pipeline", "runtime"},
}


def eventlake_imports(source: Path) -> set[str]:
    """Every eventlake module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("eventlake"))
        elif isinstance(node, ast.ImportFrom) and node.module == "eventlake":
            found.update(f"eventlake.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("eventlake."):
            found.add(node.module)
    return found


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def test_every_module_lives_in_a_room():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside pipeline/runtime/ops/local: {loose}"


@pytest.mark.parametrize("room", ROOMS)
def test_imports_go_one_way(room):
    wrong = []
    for source in sorted((PACKAGE / room).rglob("*.py")):
        for module in sorted(eventlake_imports(source)):
            target = room_of(module)
            if target is None or target not in MAY_IMPORT[room]:
                wrong.append(f"{source.relative_to(ROOT)} imports {module}")
    assert wrong == [], "\n".join(wrong)


def test_the_rule_catches_a_wrong_import(tmp_path):
    """The checker itself: a pipeline module that imports local is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from eventlake.local.producer import generate_records\n")
    modules = eventlake_imports(bad)
    assert modules == {"eventlake.local.producer"}
    assert room_of("eventlake.local.producer") not in MAY_IMPORT["pipeline"]


def test_cluster_package_holds_no_local_tools(tmp_path):
    out = tmp_path / "eventlake.zip"
    subprocess.run(["bash", str(ROOT / "scripts" / "package.sh"), str(out)], check=True, capture_output=True)
    names = zipfile.ZipFile(out).namelist()
    rooms = {name.split("/")[1] for name in names if name.count("/") == 2}
    assert rooms == {"pipeline", "runtime", "ops"}
    assert "eventlake/pipeline/contract/engine.py" in names and "eventlake/runtime/runner.py" in names
    assert "eventlake/pipeline/contract/events.toml" in names  # the built-in contract travels with the code
