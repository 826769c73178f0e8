"""`phoenix up` / `phoenix down`: what `up` tells the user to run afterwards."""

from __future__ import annotations

from pathlib import Path

from phoenix import dev, stand_in

SANDBOX_INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "sandbox.yml"


def test_up_in_another_sandbox_suggests_removing_that_sandbox(monkeypatch):
    monkeypatch.delenv("PHOENIX_SANDBOX", raising=False)
    environment = stand_in.load(SANDBOX_INVENTORY, "rel")

    assert dev.down_command(environment, "rel") == "phoenix down sandbox --sandbox rel"


def test_up_in_the_inventorys_own_sandbox_suggests_the_plain_down(monkeypatch):
    monkeypatch.delenv("PHOENIX_SANDBOX", raising=False)
    environment = stand_in.load(SANDBOX_INVENTORY)

    assert dev.down_command(environment, environment.sandbox_name) == "phoenix down sandbox"


def test_an_inventory_outside_inventories_is_named_by_its_path_in_the_down_command(monkeypatch):
    monkeypatch.delenv("PHOENIX_SANDBOX", raising=False)
    monkeypatch.chdir(SANDBOX_INVENTORY.parents[1])
    environment = stand_in.load(Path("tests/e2e/own_apps/apps.yml"), "dbg")

    command = dev.down_command(environment, "dbg")

    assert command == "phoenix down tests/e2e/own_apps/apps.yml --sandbox dbg"
    assert dev.load_throwaway(command.split()[2], "dbg").path.resolve() == environment.path.resolve()


def test_up_describes_the_hosts_and_ends_with_the_down_of_its_own_sandbox(monkeypatch):
    monkeypatch.delenv("PHOENIX_SANDBOX", raising=False)
    environment = stand_in.load(SANDBOX_INVENTORY, "rel")
    state = {"hosts": {"web1": {"address": "172.30.0.2", "container": "phx-rel-web1"}}}
    monkeypatch.setattr(dev.sandbox_state, "read", lambda name: state if name == "rel" else {"hosts": {}})

    text = dev.describe(environment, "rel")

    assert "docker exec -it phx-rel-web1 bash" in text
    assert text.splitlines()[-1] == "Remove it: phoenix down sandbox --sandbox rel"
