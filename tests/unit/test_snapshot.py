"""roles/snapshot.py: one command answering the checks of a converge, used only while nothing changed on the host."""

from __future__ import annotations

import hashlib
import subprocess
from types import SimpleNamespace

import pytest
from pyinfra.context import ctx_host, ctx_state

from roles import operations, snapshot
from roles.snapshot import HostSnapshot


def run_fact(fact, **arguments):
    """Runs the fact's command in a local shell and returns what the fact makes of its output."""
    output = subprocess.run(["sh", "-c", fact.command(**arguments)], capture_output=True, text=True, check=True)
    return fact.process(output.stdout.splitlines())


def test_the_snapshot_command_reads_each_path_in_order_in_one_shell(tmp_path):
    (tmp_path / "config").write_text("port 22\n")
    (tmp_path / "config").chmod(0o640)
    (tmp_path / "directory").mkdir(mode=0o750)
    (tmp_path / "link").symlink_to(tmp_path / "config")
    paths = [str(tmp_path / name) for name in ("config", "missing", "directory", "link", "with space")]
    (tmp_path / "with space").write_text("")

    answer = run_fact(HostSnapshot(), files=paths, services=[], packages=[], commands=[])

    states = [snapshot.parse_file_state(line) for line in answer["files"]]
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    assert states[0] == {
        "type": "file",
        "mode": 640,
        "user": user,
        "group": states[0]["group"],
        "sha256": hashlib.sha256(b"port 22\n").hexdigest(),
    }
    assert states[1] is None
    assert states[2]["type"] == "directory" and states[2]["mode"] == 750
    assert states[3] == {"type": "link", "target": str(tmp_path / "config")}
    assert states[4]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_each_unit_gets_one_line_even_where_systemctl_says_nothing():
    command = HostSnapshot().command(files=[], services=["nginx.service", "no-such.service"], packages=[], commands=[])
    # systemctl replaced by a stand-in that answers for nginx only
    stand_in = (
        'systemctl() { [ "$6" = nginx.service ] && printf "SubState=running\\nUnitFileState=enabled\\n"; true; };'
    )
    output = subprocess.run(["sh", "-c", stand_in + command], capture_output=True, text=True, check=True).stdout
    answer = HostSnapshot().process(output.splitlines())
    assert [snapshot.parse_unit_state(line) for line in answer["services"]] == [
        {"SubState": "running", "UnitFileState": "enabled"},
        {},
    ]


def test_dpkg_statuses_are_read_by_package_name():
    answer = HostSnapshot().process(
        ["[packages]", "nginx install ok installed", "curl deinstall ok config-files", "[services]"]
    )
    assert answer["packages"] == {"nginx": "install ok installed", "curl": "deinstall ok config-files"}
    assert "install ok installed" in snapshot.INSTALLED and "deinstall ok config-files" not in snapshot.INSTALLED


class FakeHost:
    """A host answering HostSnapshot from a table, counting how often it was asked."""

    def __init__(self, answer: list[str]):
        self.answer = answer
        self.asked = 0
        self.noops: list[str] = []

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def get_fact(self, fact, **arguments):
        assert fact is HostSnapshot
        self.asked += 1
        return fact().process(self.answer)


def executed_operation(executed: bool):
    return SimpleNamespace(operation_meta=SimpleNamespace(executed=executed))


@pytest.fixture
def planned_host():
    """A host for which this run planned two files and a service, during execution with no operation run yet."""
    fake = FakeHost(
        ["[files]", "file 644 root root abc", "absent", "[services]", "SubState=running UnitFileState=enabled"]
    )
    run_state = SimpleNamespace(is_executing=True, ops={fake: {}})
    with ctx_host.use(fake), ctx_state.use(run_state):
        record = snapshot._record()
        record.planned["files"] = {"/etc/timezone": None, "/etc/missing": None}
        record.planned["services"] = {"nginx.service": None}
        yield fake, run_state


def test_the_first_check_reads_everything_planned_and_the_others_ask_nothing(planned_host):
    fake, _ = planned_host
    assert snapshot.lookup("files", "/etc/timezone") == (
        True,
        {"type": "file", "mode": 644, "user": "root", "group": "root", "sha256": "abc"},
    )
    assert snapshot.lookup("files", "/etc/missing") == (True, None)
    assert snapshot.lookup("services", "nginx.service") == (True, {"SubState": "running", "UnitFileState": "enabled"})
    assert fake.asked == 1


def test_once_an_operation_ran_a_command_on_the_host_each_check_asks_its_own_fact(planned_host):
    fake, run_state = planned_host
    assert snapshot.lookup("files", "/etc/timezone")[0]
    run_state.ops[fake] = {"hash": executed_operation(True)}
    assert snapshot.lookup("files", "/etc/timezone") == (False, None)
    assert snapshot.lookup("services", "nginx.service") == (False, None)


def test_an_operation_that_ran_no_command_keeps_the_snapshot(planned_host):
    fake, run_state = planned_host
    run_state.ops[fake] = {"hash": executed_operation(False)}
    assert snapshot.lookup("files", "/etc/timezone")[0]


def test_no_snapshot_while_planning_or_detecting_changes_nor_for_what_was_not_planned(planned_host):
    fake, run_state = planned_host
    assert snapshot.lookup("files", "/etc/passwd") == (False, None)
    run_state.is_executing = False
    assert snapshot.lookup("files", "/etc/timezone") == (False, None)
    assert fake.asked == 0


def test_what_was_planned_after_the_snapshot_was_read_is_asked_on_its_own(planned_host):
    fake, _ = planned_host
    assert snapshot.lookup("files", "/etc/timezone")[0]
    snapshot._record().planned["services"]["ssh.service"] = None
    assert snapshot.lookup("services", "ssh.service") == (False, None)
    assert fake.asked == 1


def test_an_answer_cut_short_is_not_used(planned_host):
    fake, _ = planned_host
    fake.answer = ["[files]", "file 644 root root abc"]
    assert snapshot.lookup("files", "/etc/timezone") == (False, None)
    assert snapshot.lookup("files", "/etc/missing") == (False, None)
    assert fake.asked == 1


def test_what_an_operation_plans_is_recorded_for_its_host():
    fake = FakeHost([])
    calls = []

    def operation_function(**kwargs):
        calls.append(kwargs)

    operation_function._inner = operation_function
    planned = snapshot.reads("files", lambda arguments: [arguments["dest"]])(operation_function)
    with ctx_host.use(fake):
        planned(name="Record time zone", dest="/etc/timezone")
        assert list(snapshot._record().planned["files"]) == ["/etc/timezone"]
    assert calls == [{"name": "Record time zone", "dest": "/etc/timezone"}]


def test_operations_as_wanted_take_their_answers_from_the_one_snapshot():
    catalog = operations.PostgresCatalog().command()
    marker = "/srv/links/.migrated-release"
    fake = FakeHost(
        [
            "[files]",
            "directory 755 links links",
            "link /usr/share/zoneinfo/Etc/UTC",
            "[command 0]",
            "links:x:999:997::/srv/links:/usr/sbin/nologin",
            "[command 1]",
            "web1",
            "[command 2]",
            "3600",
            "[command 3]",
            "role|links|SCRAM-SHA-256$4096:salt$stored:server",
            "database|links|links",
            "[command 4]",
            "abc123",
        ]
    )
    run_state = SimpleNamespace(is_executing=True, ops={fake: {}})
    with ctx_host.use(fake), ctx_state.use(run_state):
        record = snapshot._record()
        record.planned["files"] = {"/srv/links": None, "/etc/localtime": None}
        record.planned["commands"] = {
            operations.passwd_entry_command("links"): None,
            operations.host_name_command(): None,
            operations.apt_lists_age_command(): None,
            catalog: None,
            operations.marker_command(marker): None,
        }
        done = [
            operations.system_account._inner(user="links", home="/srv/links", shell="/usr/sbin/nologin"),
            operations.managed_link._inner(path="/etc/localtime", target="/usr/share/zoneinfo/Etc/UTC"),
            operations.host_name._inner(hostname="web1"),
            operations.apt_lists_fresh._inner(cache_time=86400),
            operations.postgres_database._inner(database="links", owner="links"),
            operations.command_once_per_value._inner(command="migrate", marker=marker, value="abc123"),
        ]
        assert [list(commands) for commands in done] == [[]] * len(done)
    assert fake.asked == 1
    assert len(fake.noops) == len(done)
