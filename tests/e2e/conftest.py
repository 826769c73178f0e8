"""End-to-end fixtures: one throwaway sandbox per test session, converged twice, always removed.

Each test file states what it needs through these fixtures and runs alone or in any order:
`converged` (the sandbox after the two converges, hosts as they are now), `app_at_inventory_release`
(the app hosts on the release the inventory names, rebuilt if an upgrade test moved them on). A
file that needs a backup makes it in its own fixture, as the nightly timer would have.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
import testinfra
from testinfra.backend.base import CommandResult
from testinfra.backend.docker import DockerBackend

from phoenix import sandbox, sandbox_state
from phoenix.container_shell import enter_argv

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1 ... under pytest-xdist
SANDBOX_NAME = os.environ.get("PHOENIX_E2E_SANDBOX", "e2e") + (f"-{WORKER}" if WORKER else "")
HOSTS = ["web1", "web2", "db1", "vault1"]
os.environ.setdefault("PHOENIX_STATE_DIR", str(REPOSITORY / ".phoenix"))


# `./run test` runs pytest-xdist workers (`--dist loadgroup`): every e2e file is in a group, run in
# file order by one worker. Each worker that needs the session sandbox brings up its own
# (<name>-gw0, <name>-gw1), so the two session groups converge and run side by side, and the
# files with a sandbox of their own (Kinto) run beside both. A file joins a group only if it
# needs nothing an earlier file of another group leaves behind.
XDIST_GROUPS = {
    "test_own_apps.py": "e2e-kinto-sandbox",
    # group a, not b: b's first setup brings up its sandbox and then runs a whole drill (docs/ci.md: 1032 s
    # against a's 702 s). test_pitr replaces db1 and restores it from the archive; test_recovery, after it,
    # replaces web1 and needs only web1 and the vault
    "test_pitr.py": "e2e-session-sandbox-a",
    "test_drill.py": "e2e-session-sandbox-b",
    # its by-hand recovery replaces db1's data directory from the archive twice (db1 serves web2 again after it,
    # and Barman streams its new timeline); it writes its own records and backups
    "test_runbook.py": "e2e-session-sandbox-b",
    "test_upgrade.py": "e2e-session-sandbox-b",
    "test_vault_faults.py": "e2e-session-sandbox-b",
}
DEFAULT_XDIST_GROUP = "e2e-session-sandbox-a"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups into the test ids
def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            group = XDIST_GROUPS.get(Path(str(item.fspath)).name, DEFAULT_XDIST_GROUP)
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session):
    """Under `--dist loadgroup`, stops a worker whose e2e tests lost their group (pytest-xdist 3.8 with
    pytest 9.2 drops it silently): every worker would then bring up a session sandbox of its own."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [item.nodeid for item in session.items if "tests/e2e/" in str(item.fspath) and "@" not in item.nodeid]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not put {ungrouped[0]} in its group (pytest {pytest.__version__}):"
            " install the pytest versions pyproject.toml pins (./run test does)"
        )


def pyinfra_argv(*arguments: str) -> list[str]:
    return [str(Path(sys.executable).with_name("pyinfra")), "-y", *arguments]


def run_pyinfra(*arguments: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs pyinfra against the e2e sandbox's inventory; returns the finished process."""
    return subprocess.run(
        pyinfra_argv(*arguments),
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX_NAME),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_pyinfra(*arguments: str) -> subprocess.Popen:
    """Starts pyinfra like run_pyinfra, in its own process group (a test can kill it with its children)."""
    return subprocess.Popen(
        pyinfra_argv(*arguments),
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX_NAME),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def run_phoenix(*arguments: str, timeout: int = 900, **variables: str) -> subprocess.CompletedProcess:
    """Runs the `phoenix` command in the repository against the e2e sandbox, with extra environment `variables`."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("phoenix")), *arguments],
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX_NAME, **variables),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@functools.cache
def printed_runbook() -> str:
    """What `phoenix runbook inventories/sandbox.py` prints."""
    printed = run_phoenix("runbook", "inventories/sandbox.py", timeout=120)
    assert printed.returncode == 0, printed.stderr
    return printed.stdout


def from_runbook(program: str, builder: Callable[..., list[str]], *values: str) -> list[str]:
    """Given a command builder of phoenix.runbook and the values a test fills in, returns the sandbox's
    command's arguments after `program` (phoenix.runbook.PYINFRA or PHOENIX), to run with run_pyinfra or
    run_phoenix. Fails unless the printed runbook shows that command, with the builder's placeholders
    (its defaults) where the test fills in values they have: a test runs what the operator reads."""
    from phoenix import runbook
    from phoenix.inventory import load_environment

    sandbox_yml = Path("inventories/sandbox.yml")  # as `phoenix runbook` is given it, from the repository
    environment = replace(load_environment(REPOSITORY / sandbox_yml), path=sandbox_yml)
    parameters = list(inspect.signature(builder).parameters.values())[1:]
    required = [parameter for parameter in parameters if parameter.default is inspect.Parameter.empty]
    shown = builder(environment, *values[: len(required)])
    assert f"\n    {runbook.command_line(shown)}\n" in printed_runbook(), runbook.command_line(shown)
    command = builder(environment, *values)
    assert command[0] == program, command
    return command[1:]


def converge(*extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Runs deploy.py with --json; returns (parsed results, process)."""
    # a first converge installs every package and takes the vault's first base backups: about 17 min at load 32
    process = run_pyinfra("--json", *extra, "inventories/sandbox.py", "deploy.py", timeout=1800)
    assert process.returncode == 0, f"converge failed:\n{process.stderr[-6000:]}"
    return json.loads(process.stdout), process


@pytest.fixture(scope="session", autouse=True)
def sigterm_interrupts():
    """A SIGTERM (CI's timeout, a killed worker) runs the fixtures' teardowns, which remove the sandboxes."""
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    yield
    signal.signal(signal.SIGTERM, previous_handler)


@pytest.fixture(scope="session")
def sandbox_hosts():
    """Brings up the e2e sandbox (web1, web2, db1, vault1) and removes it afterwards, even on failure."""
    if not os.environ.get("PHOENIX_E2E_KEEP"):
        remove_with_guests(SANDBOX_NAME)  # leftovers of an interrupted run; with KEEP, reuse them
    try:
        yield sandbox.up(SANDBOX_NAME, HOSTS)
    finally:
        if not os.environ.get("PHOENIX_E2E_KEEP"):
            remove_with_guests(SANDBOX_NAME)


def remove_with_guests(name: str) -> None:
    """Removes sandbox `name`, and first the sandboxes whose containers joined its network (the dev
    copy's, the drill's): only those, not another worker's drill or dev copy."""
    for guest in sandbox.guests(name):
        sandbox.down(guest)
    sandbox.down(name)


@pytest.fixture(scope="session")
def first_converge(sandbox_hosts):
    return converge()


@pytest.fixture(scope="session")
def second_converge(first_converge):
    return converge()


class EnteredContainer(DockerBackend):
    """testinfra's docker backend entering the container with nsenter, as Phoenix's pyinfra connector does
    (phoenix/container_shell.py), instead of `docker exec`."""

    def run(self, command: str, *args: str, **kwargs) -> CommandResult:
        line = self.get_command(command, *args)
        argv = enter_argv(self.name, ["/bin/sh", "-c", line])
        result = self.run_local(" ".join(["%s"] * len(argv)), *argv)
        result.command = self.encode(line)
        return result


class LiveSandbox(Mapping):
    """The sandbox's hosts as they are now: {host: {"address", "container", "testinfra"}}, read on each
    lookup (a test may have replaced a container since, and its address with it)."""

    def __getitem__(self, name: str) -> dict:
        info = sandbox_state.read(SANDBOX_NAME)["hosts"][name]
        return {
            "address": info["address"],
            "container": info["container"],
            "testinfra": testinfra.host.Host(EnteredContainer(info["container"])),
        }

    def __iter__(self) -> Iterator[str]:
        return iter(sandbox_state.read(SANDBOX_NAME)["hosts"])

    def __len__(self) -> int:
        return len(sandbox_state.read(SANDBOX_NAME)["hosts"])


@pytest.fixture(scope="session")
def converged(second_converge, sandbox_hosts) -> LiveSandbox:
    """The sandbox after two converges, its hosts as they are now."""
    return LiveSandbox()


APP_HOSTS = ["web1", "web2"]
DATA_HOSTS = ["web1", "web2", "db1"]  # the app hosts and db1, web2's database


def inventory_release() -> str:
    """The release of the app that the sandbox's inventory installs (app.source's wheel version)."""
    from phoenix.inventory import load_environment
    from phoenix.wheel import wheel_version

    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    return wheel_version(environment.hosts["web1"]["app"]["source"])


def running_release(name: str) -> str:
    """The release the app on sandbox host `name` reports in its /health answer ("" when it does not answer)."""
    health = subprocess.run(
        enter_argv(container(name), ["curl", "-fsS", "--max-time", "20", "http://127.0.0.1:6543/health"]),
        capture_output=True,
        text=True,
    )
    return json.loads(health.stdout).get("version", "") if health.returncode == 0 else ""


@pytest.fixture(scope="module")
def app_at_inventory_release(converged) -> LiveSandbox:
    """The sandbox with web1 and web2 on the release the inventory names, as deploy.py, restore.py, the drill
    and the dev copy install it. When an upgrade test ran earlier in the session, web1, web2 and db1 (whose
    data have migrated past that release) are replaced by blank containers and converged again."""
    wanted = inventory_release()
    if all(running_release(name) == wanted for name in APP_HOSTS):
        return converged
    subprocess.run(["docker", "rm", "-f", *(container(name) for name in DATA_HOSTS)], check=True, capture_output=True)
    sandbox.up(SANDBOX_NAME, DATA_HOSTS)
    converge()
    assert [running_release(name) for name in APP_HOSTS] == [wanted] * len(APP_HOSTS)
    return converged


@pytest.fixture(scope="session")
def generated_secrets():
    """The throwaway secrets the sandbox environment was deployed with (those of this worker's sandbox)."""
    from phoenix.secrets import load_secrets
    from phoenix.stand_in import load

    return load_secrets(load(REPOSITORY / "inventories" / "sandbox.yml", SANDBOX_NAME))


def drill_sandbox() -> str:
    """Returns the sandbox `phoenix drill inventories/sandbox.py` uses from this checkout."""
    from phoenix.drill import drill_sandbox_name

    return drill_sandbox_name("sandbox", sandbox_state.state_root())


def container(name: str) -> str:
    return sandbox_state.container_name(SANDBOX_NAME, name)


def live_host(name: str) -> dict:
    """A sandbox host as it is now (a test may have replaced its container): its address and testinfra host."""
    return LiveSandbox()[name]
