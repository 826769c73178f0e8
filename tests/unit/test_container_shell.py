"""Entering a sandbox container with nsenter as docker exec would (phoenix/container_shell.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from phoenix import container_shell
from phoenix.container_shell import Container
from phoenix.errors import PhoenixError

WEB1 = Container(4186, "f00d" * 16, ("PATH=/usr/bin:/bin", "HOSTNAME=web1", "container=docker", "HOME=/root"))


def test_the_command_gets_docker_execs_environment_and_not_the_control_machines():
    environment = container_shell.exec_environment({"Env": ["container=docker"], "Hostname": "web1"})
    assert environment == (container_shell.DEFAULT_PATH, "HOSTNAME=web1", "container=docker", "HOME=/root")
    argv = container_shell.make_enter_argv(WEB1, ["bash", "-c", "id"])
    assert argv[:4] == ["nsenter", "--target=4186", "--all", "--"]
    assert argv[4:6] == ["env", "-i"]  # nothing of the caller's environment (its PATH, its secrets) goes in
    assert argv[6:10] == list(WEB1.environment)
    # a session of its own, in a process nsenter does not wait for: nsenter stops itself when its child stops
    # (SIGSTOP), and a command that stops until another one continues it would leave nsenter stopped for good
    assert argv[10:13] == ["setsid", "--fork", "--wait"]  # the exit status is still bash's
    assert argv[13:16] == ["sh", "-c", 'umask 022 && exec "$0" "$@"']  # docker exec's umask, not the caller's
    assert argv[16:] == ["bash", "-c", "id"]


def test_an_image_path_is_kept_and_a_hostname_comes_from_the_container():
    config = {"Env": ["PATH=/opt/bin:/usr/bin", "HOSTNAME=stale"], "Hostname": "db1"}
    assert container_shell.exec_environment(config) == ("HOSTNAME=db1", "PATH=/opt/bin:/usr/bin", "HOME=/root")


def test_a_pid_is_the_containers_only_while_its_cgroup_names_the_container(tmp_path):
    (tmp_path / "4186").mkdir()
    (tmp_path / "4186" / "cgroup").write_text(f"4:memory:/docker/{WEB1.id}\n1:cpu:/docker/{WEB1.id}\n")
    assert container_shell.still_running(WEB1, tmp_path)
    (tmp_path / "4186" / "cgroup").write_text("4:memory:/user.slice\n")  # the PID went to another process
    assert not container_shell.still_running(WEB1, tmp_path)
    assert not container_shell.still_running(Container(999, WEB1.id, ()), tmp_path)  # gone


def test_docker_is_asked_again_only_when_the_known_container_is_gone(monkeypatch):
    asked = []
    monkeypatch.setattr(container_shell, "_known", {})
    monkeypatch.setattr(container_shell, "inspect", lambda name: asked.append(name) or WEB1)
    alive = {"yes": True}
    monkeypatch.setattr(container_shell, "still_running", lambda container: alive["yes"])
    monkeypatch.setattr(container_shell.os, "geteuid", lambda: 0)
    assert container_shell.enter_argv("phx-s-web1", ["true"])[1] == "--target=4186"
    container_shell.enter_argv("phx-s-web1", ["true"])
    assert asked == ["phx-s-web1"]
    alive["yes"] = False  # the test replaced the container
    container_shell.enter_argv("phx-s-web1", ["true"])
    assert asked == ["phx-s-web1", "phx-s-web1"]


def test_a_container_that_is_not_running_is_named(monkeypatch):
    class Result:
        returncode, stdout, stderr = 0, '[{"Id": "x", "State": {"Running": false, "Pid": 0, "Status": "exited"}}]', ""

    monkeypatch.setattr(container_shell.subprocess, "run", lambda *a, **k: Result())
    with pytest.raises(PhoenixError, match="container phx-s-web1 is not running \\(state: exited\\)"):
        container_shell.inspect("phx-s-web1")


def test_pyinfra_reaches_a_sandbox_container_through_phoenixs_connector():
    from pyinfra.api.connectors import get_all_connectors

    from phoenix import sandbox_state
    from phoenix.sandbox_connector import SandboxConnector

    assert get_all_connectors()["sandbox"] is SandboxConnector  # pyproject.toml's entry point
    name = sandbox_state.pyinfra_host_name("phx-s-web1")
    assert list(SandboxConnector.make_names_data("phx-s-web1")) == [
        (name, {"docker_identifier": "phx-s-web1"}, ["@sandbox"])
    ]
    assert name == "@sandbox/phx-s-web1"


def test_the_end_of_a_converge_leaves_the_container_alone_and_says_nothing_of_a_docker_build(caplog):
    from phoenix.sandbox_connector import SandboxConnector

    connector = SimpleNamespace(container_id="c0ffee", no_stop=False, host=SimpleNamespace(print_prefix="[web1] "))
    SandboxConnector.disconnect(connector)  # pyinfra's own would stop and commit the container, or log a build

    assert caplog.records == []


def test_a_user_who_is_not_root_gets_docker_exec(monkeypatch):
    monkeypatch.setattr(container_shell.os, "geteuid", lambda: 1000)  # in docker's group, not allowed nsenter
    assert container_shell.enter_argv("phx-s-web1", ["true"]) == ["docker", "exec", "-i", "phx-s-web1", "true"]
