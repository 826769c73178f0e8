"""Dependencies point down: the recovery path (restore.py) does not load drill, sandbox or stand-in code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def phoenix_imports(path: Path) -> list[str]:
    """Given a Python file, returns the phoenix modules it imports (at any depth of the file)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "phoenix"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "phoenix":
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]  # `from phoenix import status`
    return found


def loaded_modules(modules: list[str]) -> set[str]:
    """Imports the modules in a fresh interpreter; returns every module it then has loaded."""
    code = "import importlib, sys\n"
    code += "".join(f"try:\n    importlib.import_module({name!r})\nexcept ImportError:\n    pass\n" for name in modules)
    code += "print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY)
    return set(result.stdout.split())


def test_restore_py_does_not_load_drill_sandbox_or_stand_in_code():
    dependencies = phoenix_imports(REPOSITORY / "restore.py")
    assert "phoenix.restore_plan" in dependencies
    loaded = loaded_modules(dependencies)
    assert "phoenix.restore_plan" in loaded and "phoenix.vault_client" in loaded
    assert not {"phoenix.drill", "phoenix.sandbox", "phoenix.stand_in", "phoenix.status"} & loaded


def test_phoenix_status_reads_the_drill_history_without_loading_drill_or_container_code():
    loaded = loaded_modules(["phoenix.status"])
    assert "phoenix.drill_report" in loaded
    assert not {"phoenix.drill", "phoenix.sandbox", "phoenix.stand_in"} & loaded


def test_phoenix_runbook_takes_the_servers_settings_paths_without_loading_pyinfra_or_roles():
    loaded = loaded_modules(["phoenix.runbook"])
    assert {"phoenix.remote.vault", "phoenix.remote.backup_host"} <= loaded  # where the paths are defined
    assert not {name for name in loaded if name.split(".")[0] in ("pyinfra", "roles")}


def test_backup_py_and_upgrade_py_reach_the_vault_without_the_status_verb():
    for entry in ("backup.py", "upgrade.py"):
        loaded = loaded_modules(phoenix_imports(REPOSITORY / entry))
        assert "phoenix.vault_client" in loaded, entry
        assert not {"phoenix.drill", "phoenix.sandbox", "phoenix.stand_in", "phoenix.status"} & loaded, entry


def test_end_to_end_test_files_share_helpers_only_through_helpers_and_conftest():
    for path in sorted((REPOSITORY / "tests" / "e2e").glob("test_*.py")):
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.")
        }
        assert not {module for module in imported if module.startswith("tests.e2e.test_")}, path.name


def test_every_phoenix_module_and_end_to_end_test_file_imports():
    modules = [
        ".".join(path.relative_to(REPOSITORY).with_suffix("").parts)
        for folder in ("phoenix", "tests/e2e")
        for path in sorted((REPOSITORY / folder).rglob("*.py"))
        if path.name != "__init__.py" and "own_apps" not in path.parts and "broken_release" not in path.parts
    ]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    result = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, cwd=REPOSITORY)
    assert result.returncode == 0, result.stderr[-2000:]
