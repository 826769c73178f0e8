"""`phoenix pin`, `phoenix pins` and `phoenix unpin`: a pin is made from the control machine and
listed with its reason, and only an explicit, reasoned unpin releases it, logged on the vault
with who and why."""

from __future__ import annotations

import getpass
import json
import socket

from phoenix import runbook
from tests.e2e.conftest import from_runbook, run_phoenix
from tests.e2e.helpers import backed_up, sh


def pinned_runs() -> dict[str, str]:
    pins = json.loads(sh("vault1", "phoenix-vault pins --client web2").stdout)["pins"]
    return {pin["run"]: pin["pin"] for pin in pins}


def test_a_pin_is_listed_and_released_only_with_a_reason_which_the_vault_logs(converged):
    run = backed_up("web2", "files", "manual")["run"]
    pinned = run_phoenix("pin", "inventories/sandbox.py", run, "--reason", "e2e: before the schema change")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned_runs()[run] == "e2e: before the schema change"

    listed = run_phoenix(*from_runbook(runbook.PHOENIX, runbook.pins))
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if run in line)
    assert row.startswith("web2") and row.endswith("e2e: before the schema change")

    refused = run_phoenix(*from_runbook(runbook.PHOENIX, runbook.unpin, run, " "))
    assert refused.returncode == 2 and "--reason must say why" in refused.stderr
    assert run in pinned_runs()

    released = run_phoenix(*from_runbook(runbook.PHOENIX, runbook.unpin, run, "the change shipped"))
    assert released.returncode == 0, released.stderr
    assert run not in pinned_runs()
    log = sh("vault1", "cat /var/lib/phoenix-vault/log/retention.log").stdout
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    assert f"unpinned web2/files run {run} (pin 'e2e: before the schema change') by {who}: the change shipped" in log

    again = run_phoenix(*from_runbook(runbook.PHOENIX, runbook.unpin, run, "twice"))
    assert again.returncode == 2 and f"no pinned run matches '{run}'" in again.stderr
