"""Every file the blueprint writes states its mode: through the docker connector a file without one lands
as 0600 (pyinfra uploads a private temporary file), over SSH as the umask makes it; tests must see what
servers get."""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCES = sorted([*REPOSITORY.glob("roles/*.py"), *REPOSITORY.glob("*.py")])
# files.line and files.link edit or point at files they do not create; everything else writes one.
FILE_OPERATIONS = {"files.template", "files.put", "files.file", "files.directory", "secret_file"}


def operation_name(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
        return f"{function.value.id}.{function.attr}"
    return function.id if isinstance(function, ast.Name) else ""


def removes_the_file(call: ast.Call) -> bool:
    return any(
        keyword.arg == "present" and isinstance(keyword.value, ast.Constant) and keyword.value.value is False
        for keyword in call.keywords
    )


def file_operations_without_mode(path: Path) -> list[str]:
    """Given a Python source, returns "file:line operation" for each file-writing operation lacking mode=."""
    missing = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or operation_name(node) not in FILE_OPERATIONS or removes_the_file(node):
            continue
        if not any(keyword.arg == "mode" for keyword in node.keywords):
            label = path.relative_to(REPOSITORY) if path.is_relative_to(REPOSITORY) else path.name
            missing.append(f"{label}:{node.lineno} {operation_name(node)}")
    return missing


def test_the_scan_sees_the_roles_and_entry_points():
    names = {path.relative_to(REPOSITORY).as_posix() for path in SOURCES}
    assert {"roles/base.py", "roles/timers.py", "roles/app.py", "deploy.py", "restore.py", "upgrade.py"} <= names


def test_every_file_operation_states_its_mode():
    missing = [entry for path in SOURCES for entry in file_operations_without_mode(path)]
    assert missing == [], "file operations without mode= (they land as 0600 through docker):\n" + "\n".join(missing)


def test_a_template_without_mode_is_caught_and_a_removal_is_not(tmp_path):
    source = tmp_path / "role.py"
    source.write_text('files.template(src="a.j2", dest="/etc/a")\nfiles.file(path="/etc/b", present=False)\n')

    assert file_operations_without_mode(source) == ["role.py:1 files.template"]
