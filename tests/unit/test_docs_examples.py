"""The inventory parts docs/apps.md shows for its worked examples pass the inventory check as they are."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from phoenix.inventory import load_environment

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLES = ["Kinto", "django-wiki", "a Flask app"]


def documented_app(example: str) -> dict:
    """Given a worked example's title, returns the first `app:` block of its section in docs/apps.md."""
    text = (REPOSITORY / "docs" / "apps.md").read_text()
    section = re.search(rf"^## Worked example: {re.escape(example)}\b.*?(?=^## )", text, re.M | re.S)
    assert section, f"docs/apps.md has no worked example {example!r}"
    block = re.search(r"^( +)app:\n(?:\1 .*\n|\n)+", section.group(0), re.M)
    assert block, f"the worked example {example!r} shows no inventory app part"
    return yaml.safe_load(textwrap.dedent(block.group(0)))["app"]


def make_files_it_names(app: dict, base: Path) -> None:
    """Creates the project directories and locks the app part names (their content is not the check's)."""
    releases = [release for release in app.get("releases", {}).values() if isinstance(release, dict)]
    for lock in [app["lock"], *(release["lock"] for release in releases)]:
        (base / lock).parent.mkdir(parents=True, exist_ok=True)
        (base / lock).write_text("gunicorn==23.0.0 --hash=sha256:" + "0" * 64 + "\n")
    for source in [app["source"], *(release["source"] for release in releases)]:
        if "==" not in source:  # a directory; a PyPI release needs no file
            (base / source).mkdir(parents=True, exist_ok=True)
            (base / source / "pyproject.toml").write_text("[project]\nname = 'example'\nversion = '1.0.0'\n")


@pytest.mark.parametrize("example", EXAMPLES)
def test_a_worked_examples_inventory_part_passes_the_inventory_check(
    example, write_inventory, shop_inventory_text, tmp_path, monkeypatch
):
    app = documented_app(example)
    inventory = yaml.safe_load(shop_inventory_text)
    inventory["hosts"]["web1"]["app"] = {**app, "database": {**app["database"], "host": "db1"}}
    monkeypatch.chdir(tmp_path)
    make_files_it_names(app, tmp_path)
    environment = load_environment(write_inventory(yaml.safe_dump(inventory)))
    loaded = environment.hosts["web1"]["app"]
    assert {key: loaded[key] for key in app if key != "database"} == {k: v for k, v in app.items() if k != "database"}
