"""`phoenix up dev --with-data`: a dev copy built by the blueprint, serving the newest backup of the
sandbox's web1 (standing in for production), and `phoenix down dev` removing it."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from phoenix import sandbox, sandbox_state
from phoenix.container_shell import enter_argv
from phoenix.drill_checks import Target, https_get
from tests.e2e.conftest import SANDBOX_NAME, live_host, run_phoenix
from tests.e2e.helpers import post_json, sh

DEV_SANDBOX = f"{SANDBOX_NAME}-dev"


@pytest.fixture(scope="module")
def dev_copy(app_at_inventory_release):
    """A record written on the sandbox's web1 and backed up; then the dev copy is made from it."""
    link = post_json(live_host("web1"), "/api/links", {"url": "https://example.org/dev", "note": f"dev-{uuid.uuid4()}"})
    assert sh("web1", "phoenix-backup run all --trigger manual").returncode == 0
    process = run_phoenix("up", "dev", "--with-data", "--from", "inventories/sandbox.py", "--sandbox", DEV_SANDBOX)
    try:
        info = sandbox_state.read(DEV_SANDBOX)["hosts"]["web1"] if process.returncode == 0 else None
        yield {"process": process, "link": link, "host": info}
    finally:
        sandbox.down(DEV_SANDBOX)


def test_up_with_data_serves_the_newest_backup_over_https(dev_copy):
    process = dev_copy["process"]
    assert process.returncode == 0, process.stderr[-4000:]
    target = Target("web1", {"site": {"server_name": "links.dev.test"}}, dev_copy["host"]["container"],
                    dev_copy["host"]["address"])  # fmt: skip
    status, body = https_get(target, f"/api/links/{dev_copy['link']['id']}")
    assert status == 200 and dev_copy["link"]["note"] in body.decode()


def test_up_prints_the_url_and_a_shell_for_each_host(dev_copy):
    output = dev_copy["process"].stdout
    assert f"docker exec -it {sandbox_state.container_name(DEV_SANDBOX, 'web1')} bash" in output
    assert "https://links.dev.test/" in output


def test_the_dev_copy_never_backs_up_into_the_sources_repository(dev_copy):
    container = sandbox_state.container_name(DEV_SANDBOX, "web1")
    run = subprocess.run(enter_argv(container, ["phoenix-backup", "run", "all"]), capture_output=True, text=True)
    assert run.returncode == 3 and "stands in for sandbox/web1" in run.stderr
    timers = subprocess.run(
        enter_argv(container, ["systemctl", "list-unit-files", "--no-legend", "phoenix-backup-*"]),
        capture_output=True, text=True,
    )  # fmt: skip
    assert timers.stdout.strip() == ""


def test_down_removes_the_dev_copy(dev_copy):
    process = run_phoenix("down", "dev", "--sandbox", DEV_SANDBOX)
    assert process.returncode == 0 and "removed 1 container(s)" in process.stdout
    assert sandbox.labelled("container", DEV_SANDBOX) == []
