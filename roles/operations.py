"""Operations pyinfra's core lacks: each reads facts, compares, and yields only what is needed."""

from __future__ import annotations

import hashlib
import os
import posixpath
import shlex
import tarfile
import time
from collections.abc import Callable
from io import BytesIO, StringIO
from typing import IO

from pyinfra import host, state
from pyinfra.api import FactBase, FileUploadCommand, operation
from pyinfra.api.util import get_template
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util.files import ensure_mode_int

from phoenix import scram
from phoenix.commands import make_marker_write_command, make_service_restart_command
from roles import snapshot
from roles.snapshot import (
    file_state_command,
    package_status_command,
    parse_file_state,
    parse_package_statuses,
    sectioned_command,
    sections,
)

# Secret files are uploaded into this root-only directory first, so the clear content is never
# readable by others on its way to the destination.
SECRET_UPLOAD_DIRECTORY = "/root/.phoenix-upload"


@snapshot.reads("files", lambda arguments: [arguments["path"]])
@operation()
def secret_file(path: str, content: str, user: str = "root", group: str = "root", mode: str = "0600"):
    """
    Upload a file whose content is secret: compared by checksum, never printed (not even by --diff).

    + path: where the file goes on the server
    + content: the file's text
    + user, group, mode: its owner and permissions

    **Example:**

    .. code:: python

        secret_file(path="/etc/links/production.ini", content=ini, group="links", mode="0640")
    """
    digest = hashlib.sha256(content.encode()).hexdigest()
    current = _file_state(path)
    if current and current["type"] == "file" and current["sha256"] == digest:
        if _owner_and_mode_match(current, user, group, mode):
            host.noop(f"{path} already has the wanted content, owner and mode (secret, not shown)")
            return
        host.noop(f"{path} already has the wanted content (secret, not shown)")
        yield " && ".join(_owner_and_mode_commands(path, user, group, mode, current))
        return
    yield _directory_command(SECRET_UPLOAD_DIRECTORY, "root", "root", "0700")
    yield FileUploadCommand(StringIO(content), path, remote_temp_filename=f"{SECRET_UPLOAD_DIRECTORY}/{digest[:16]}")
    yield " && ".join(_owner_and_mode_commands(path, user, group, mode))


class FileState(FactBase):
    """Returns what a path is, in one command: None when absent, else {"type": "file", "directory", "link" or
    "other"; for a file or directory "mode" (octal digits as an int, 644), "user", "group"; for a file "sha256"}.

    A symbolic link is a "link", whatever it points to; "sha256" is "" when the file cannot be read.
    """

    def command(self, path: str) -> str:
        return file_state_command(shlex.quote(path))

    def process(self, output: list[str]) -> dict | None:
        return parse_file_state(output[0] if output else "")


def _file_state(path: str) -> dict | None:
    """What `path` is (FileState's answer), from the host snapshot while it may be used, else asked."""
    known, answer = snapshot.lookup("files", path)
    return answer if known else host.get_fact(FileState, path=path)


def _file_states(paths: list[str]) -> dict[str, dict | None]:
    """What each path is (FileState's answers), from the host snapshot while it may be used, else in one command."""
    answers = {path: snapshot.lookup("files", path) for path in paths}
    if all(known for known, _ in answers.values()):
        return {path: answer for path, (_, answer) in answers.items()}
    names = {path: f"file {number}" for number, path in enumerate(paths)}  # a section name has no "/"
    parts = {names[path]: file_state_command(shlex.quote(path)) for path in paths}
    found = sections(host.get_fact(Command, command=sectioned_command(parts)), parts)
    return {path: parse_file_state(found[names[path]][0] if found[names[path]] else "") for path in paths}


def _owner_and_mode_match(current: dict, user: str | None, group: str | None, mode: str | int | None) -> bool:
    """Given FileState's answer, tells whether the owner, group and mode asked for (None: any) are the path's."""
    return (
        (user is None or current.get("user") == user)
        and (group is None or current.get("group") == group)
        and (mode is None or current.get("mode") == ensure_mode_int(mode))
    )


def _owner_and_mode_commands(path: str, user: str | None, group: str | None, mode: str | int | None,
                             current: dict | None = None) -> list[str]:  # fmt: skip
    """The chown and chmod giving `path` the owner, group and mode asked for (None: left as it is), leaving out
    what FileState's answer `current` (None: a new path) shows as already so."""
    quoted = shlex.quote(path)
    owner = f"{user or ''}{':' + group if group else ''}"
    owned = bool(current) and _owner_and_mode_match(current, user, group, None)
    moded = bool(current) and _owner_and_mode_match(current, None, None, mode)
    return [
        *([f"chown {shlex.quote(owner)} {quoted}"] if owner and not owned else []),
        *([f"chmod {ensure_mode_int(mode)} {quoted}"] if mode is not None and not moded else []),
    ]


def _directory_command(path: str, user: str | None, group: str | None, mode: str | int | None) -> str:
    """The one line making directory `path` (and its parents) with the owner, group and mode asked for."""
    return " && ".join([f"mkdir -p {shlex.quote(path)}", *_owner_and_mode_commands(path, user, group, mode)])


def _new_file_commands(content: bytes, path: str, user: str | None, group: str | None, mode: str | int | None):
    """The commands making a file at a path FileState found absent, where files.put would ask three facts
    first: its parent directory when missing (given the file's owner, as files.put does), the upload, then the
    owner and mode in one line."""
    parent = posixpath.dirname(path)
    yield f"[ -d {shlex.quote(parent)} ] || {{ {_directory_command(parent, user, group, None)}; }}"
    yield FileUploadCommand(BytesIO(content), path, remote_temp_filename=host.get_temp_filename(path))
    owner_and_mode = _owner_and_mode_commands(path, user, group, mode)
    if owner_and_mode:
        yield " && ".join(owner_and_mode)


def _already_there(current: dict | None, content: bytes, user: str | None, group: str | None,
                   mode: str | int | None) -> bool:  # fmt: skip
    """Given FileState's answer for a path, tells whether it is a regular file with exactly `content`, owner,
    group and mode."""
    return bool(
        current
        and current["type"] == "file"
        and current["sha256"] == hashlib.sha256(content).hexdigest()
        and _owner_and_mode_match(current, user, group, mode)
    )


def _local_bytes(src: str | IO) -> bytes:
    """The content of a local file (a path, relative to the deploy directory like files.put's) or file object."""
    if hasattr(src, "getvalue"):
        value = src.getvalue()
        return value.encode() if isinstance(value, str) else value
    if not os.path.isabs(src) and state.cwd:
        src = os.path.join(state.cwd, src)
    with open(src, "rb") as local:
        return local.read()


@snapshot.reads("files", lambda arguments: [arguments["dest"]])
@operation()
def put_file(src: str | IO, dest: str, user: str | None = None, group: str | None = None, mode: str | None = None):
    """
    Upload a file, like files.put, with one command on the server when it is already there: its type,
    SHA-256, owner and mode are read at once. Anything else is files.put's own work (parent directory,
    upload, --diff, owner, mode).

    + src: local path (relative to the deploy directory) or file object
    + dest: where the file goes on the server
    + user, group, mode: its owner and permissions (None: not managed)

    **Example:**

    .. code:: python

        put_file(name="Record time zone", src=StringIO("Etc/UTC\n"), dest="/etc/timezone", mode="0644")
    """
    content, current = _local_bytes(src), _file_state(dest)
    if _already_there(current, content, user, group, mode):
        host.noop(f"{dest} already has the wanted content, owner and mode")
        return
    if current is None and not state.config.DIFF:  # --diff: files.put prints the new file
        yield from _new_file_commands(content, dest, user, group, mode)
        return
    yield from files.put._inner(src=src, dest=dest, user=user, group=group, mode=mode)


@snapshot.reads("files", lambda arguments: list(arguments["texts"]))
@operation()
def put_files(texts: dict[str, str], modes: dict[str, str]):
    """
    Upload a set of root-owned files in one archive (one upload, one `tar -x`) when any of them is missing or
    differs, where put_file would take a few commands for each: for many small files that change together.
    All their checks are one command on the server (none while the host snapshot answers).

    + texts: {path on the server: its text}
    + modes: {path: its mode}, for each path

    **Example:**

    .. code:: python

        put_files(name="Phoenix tools", texts={"/usr/local/sbin/tool": "#!/bin/sh\n"},
                  modes={"/usr/local/sbin/tool": "0755"})
    """
    current = _file_states(list(texts))
    if all(_already_there(current[path], texts[path].encode(), "root", "root", modes[path]) for path in texts):
        host.noop(f"the {len(texts)} files already have the wanted content, owner and mode")
        return
    temporary = host.get_temp_filename("put_files " + " ".join(sorted(texts)))
    parents = sorted({posixpath.dirname(path) for path in texts})
    yield f"mkdir -p {shlex.join(parents)}"
    yield FileUploadCommand(BytesIO(_tar({path: (texts[path], modes[path]) for path in texts})), temporary)
    yield f"tar -x -f {shlex.quote(temporary)} -C / && rm -f {shlex.quote(temporary)}"


def _tar(members: dict[str, tuple[str, str]]) -> bytes:
    """Given {absolute path: (text, mode)}, returns a tar archive of them, owned by root, paths relative to /."""
    archive = BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, (text, mode) in sorted(members.items()):
            content = text.encode()
            member = tarfile.TarInfo(path.lstrip("/"))
            member.size, member.mode, member.mtime = len(content), int(mode, 8), int(time.time())
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            tar.addfile(member, BytesIO(content))
    return archive.getvalue()


@snapshot.reads("files", lambda arguments: [arguments["dest"]])
@operation()
def template_file(src: str, dest: str, user: str | None = None, group: str | None = None, mode: str | None = None,
                  **data):  # fmt: skip
    """
    Render a Jinja2 template (as files.template does: StrictUndefined, `host`, `state` and `inventory` in
    scope) and upload it with put_file: one command on the server when the file is already there.

    + src: template path, relative to the deploy directory
    + dest: where the rendered file goes on the server
    + user, group, mode: its owner and permissions (None: not managed)
    + data: the template's variables

    **Example:**

    .. code:: python

        template_file(name="nginx site", src="templates/nginx/app.conf.j2", dest="/etc/nginx/sites-available/a.conf",
                      mode="0644", site=site)
    """
    path = os.path.join(state.cwd, src) if state.cwd else src
    data.setdefault("host", host)
    data.setdefault("state", state)
    data.setdefault("inventory", state.inventory)
    rendered = get_template(path).render(data)
    current = _file_state(dest)
    if _already_there(current, rendered.encode(), user, group, mode):
        host.noop(f"{dest} already has the wanted content, owner and mode")
        return
    if current is None and not state.config.DIFF:  # --diff: files.template prints the new file
        yield from _new_file_commands(rendered.encode(), dest, user, group, mode)
        return
    yield from files.template._inner(src=src, dest=dest, user=user, group=group, mode=mode, **data)


# the unit types systemd.service recognises by suffix; any other name is a service
UNIT_SUFFIXES = (".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path", ".timer",
                 ".slice", ".scope")  # fmt: skip


class ServiceState(FactBase):
    """Returns a systemd unit's {"SubState", "UnitFileState"} in one command ({} when systemctl cannot say)."""

    def command(self, service: str) -> str:
        return f"systemctl show -p SubState -p UnitFileState {shlex.quote(service)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict:
        return dict(line.split("=", 1) for line in output if "=" in line)


def unit_of(service: str) -> str:
    """The unit systemd.service manages for `service`: the name itself when it has a unit suffix, else .service."""
    return service if service.endswith(UNIT_SUFFIXES) else f"{service}.service"


@snapshot.reads("services", lambda arguments: [unit_of(arguments["service"])])
@operation()
def service_running(service: str):
    """
    Make a systemd unit run now and at boot, like systemd.service(running=True, enabled=True), with one
    command on the server when it already does; systemd.service does the rest.

    + service: the unit (".service" when no suffix is given)

    **Example:**

    .. code:: python

        service_running(name="nginx running", service="nginx")
    """
    unit = unit_of(service)
    known, current = snapshot.lookup("services", unit)
    if not known:
        current = host.get_fact(ServiceState, service=unit)
    # the states pyinfra's SystemdStatus and SystemdEnabled take for running and enabled
    running = current.get("SubState") in ("running", "waiting", "exited", "listening", "mounted")
    if running and current.get("UnitFileState") in ("enabled", "static"):
        host.noop(f"service {unit} is running and enabled")
        return
    yield from systemd.service._inner(service=unit, running=True, enabled=True)


def service_running_or_restarted(service: str, restart: Callable[[], bool], running_name: str, restart_name: str):
    """Either of two operations: make `service` run and start at boot when restart() is false, else enable and
    restart it (a restart also starts a stopped unit), so that a changed unit starts once, not twice."""
    service_running(name=running_name, service=service, _if=lambda: not restart())
    server.shell(name=restart_name, commands=[make_service_restart_command(service)], _if=restart)


@snapshot.reads("files", lambda arguments: [arguments["path"]])
@operation()
def managed_directory(path: str, user: str | None = None, group: str | None = None, mode: str | None = None):
    """
    Make a directory, like files.directory, with at most one command on the server when it is already there
    (none while the host snapshot answers); files.directory does the rest.

    + path: the directory on the server
    + user, group, mode: its owner and permissions (None: not managed)

    **Example:**

    .. code:: python

        managed_directory(name="App home", path="/srv/links", user="links", group="links", mode="0755")
    """
    current = _file_state(path)
    if current and current["type"] == "directory" and _owner_and_mode_match(current, user, group, mode):
        host.noop(f"directory {path} already exists with the wanted owner and mode")
        return
    if current is None:
        yield _directory_command(path, user, group, mode)
        return
    yield from files.directory._inner(path=path, user=user, group=group, mode=mode)


@snapshot.reads("files", lambda arguments: [arguments["path"]])
@operation()
def managed_link(path: str, target: str | None = None, present: bool = True):
    """
    Make (or, with present=False, remove) a symbolic link, like files.link, with at most one command on the
    server when it is already as wanted (none while the host snapshot answers); files.link does the rest.

    + path: the link on the server
    + target: what it points to (not needed to remove it)
    + present: whether the link should exist

    **Example:**

    .. code:: python

        managed_link(name="Time zone", path="/etc/localtime", target="/usr/share/zoneinfo/Etc/UTC")
    """
    current = _file_state(path)
    if present and current and current["type"] == "link" and current["target"] == target:
        host.noop(f"link {path} already exists")
        return
    if not present and current is None:
        host.noop(f"link {path} does not exist")
        return
    yield from files.link._inner(path=path, target=target, present=present)


@snapshot.reads("files", lambda arguments: [arguments["path"]])
@operation()
def managed_file(path: str, present: bool = True, user: str | None = None, group: str | None = None,
                 mode: str | None = None):  # fmt: skip
    """
    Make a file exist with an owner and mode, or not exist at all, like files.file, with at most one command
    on the server when it already is as wanted (none while the host snapshot answers); files.file does the rest.

    + path: the file on the server
    + present: whether the file should exist
    + user, group, mode: its owner and permissions (None: not managed)

    **Example:**

    .. code:: python

        managed_file(name="TLS key mode", path="/etc/ssl/phoenix/a.key", user="root", group="root", mode="0600")
    """
    current = _file_state(path)
    if present and current and current["type"] == "file" and _owner_and_mode_match(current, user, group, mode):
        host.noop(f"file {path} already exists with the wanted owner and mode")
        return
    if not present and current is None:
        host.noop(f"file {path} does not exist")
        return
    yield from files.file._inner(path=path, present=present, user=user, group=group, mode=mode)


@snapshot.reads("packages", lambda arguments: arguments["packages"])
@operation()
def packages_installed(packages: list[str]):
    """
    Install Debian packages without recommends, like apt.packages(no_recommends=True), asking nothing of the
    server while the host snapshot says all of them are installed; apt.packages does the rest.

    + packages: the package names

    **Example:**

    .. code:: python

        packages_installed(name="Install nginx", packages=["nginx"])
    """
    statuses = [snapshot.lookup("packages", package) for package in packages]
    if not all(known for known, _ in statuses):
        # dpkg-query of these packages: pyinfra's DebPackages parses the status of every installed package
        asked = host.get_fact(PackageStatuses, packages=packages)
        statuses = [(True, asked.get(package)) for package in packages]
    if all(status in snapshot.INSTALLED for _, status in statuses):
        host.noop(f"packages {', '.join(packages)} are installed")
        return
    yield from apt.packages._inner(packages=packages, no_recommends=True)


class PackageStatuses(FactBase):
    """Returns {package: dpkg's status ("install ok installed")} for the packages dpkg knows of, in one command."""

    def command(self, packages: list[str]) -> str:
        return package_status_command(packages)

    @staticmethod
    def default() -> dict:
        return {}  # dpkg knows none of them: a fact with no output gets this, not None

    def process(self, output: list[str]) -> dict:
        return parse_package_statuses(output)


APT_UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"  # what apt.update's cache_time reads


def apt_lists_age_command() -> str:
    """The shell command printing how many seconds ago apt's lists were last refreshed ("none" when never)."""
    return f"[ -e {APT_UPDATE_STAMP} ] && echo $(( $(date +%s) - $(stat -c %Y {APT_UPDATE_STAMP}) )) || echo none"


@snapshot.reads("commands", lambda arguments: [apt_lists_age_command()])
@operation()
def apt_lists_fresh(cache_time: int):
    """
    Refresh apt's package lists unless they are younger than `cache_time` seconds, like
    apt.update(cache_time=...), asking nothing of the server while the host snapshot says they are; apt.update
    does the rest.

    + cache_time: the lists' greatest age, in seconds

    **Example:**

    .. code:: python

        apt_lists_fresh(name="Refresh apt lists (at most daily)", cache_time=86400)
    """
    known, lines = snapshot.lookup("commands", apt_lists_age_command())
    if known and lines and lines[0].isdigit() and int(lines[0]) < cache_time:
        host.noop(f"apt lists were refreshed {lines[0]} s ago")
        return
    yield from apt.update._inner(cache_time=cache_time)


def host_name_command() -> str:
    """The shell command printing the host name when hostnamectl sets it (server.hostname then only compares)."""
    return "command -v hostnamectl >/dev/null && uname -n || true"


@snapshot.reads("commands", lambda arguments: [host_name_command()])
@operation()
def host_name(hostname: str):
    """
    Set the host name, like server.hostname, asking nothing of the server while the host snapshot says it is
    set (by hostnamectl); server.hostname does the rest.

    + hostname: the wanted host name

    **Example:**

    .. code:: python

        host_name(name="Set host name", hostname="web1")
    """
    known, lines = snapshot.lookup("commands", host_name_command())
    if known and lines == [hostname]:
        host.noop("hostname is set")
        return
    yield from server.hostname._inner(hostname=hostname)


def passwd_entry_command(user: str) -> str:
    """The shell command printing a user's passwd line (nothing when there is no such user)."""
    return f"getent passwd {shlex.quote(user)} || true"


@snapshot.reads("commands", lambda arguments: [passwd_entry_command(arguments["user"])])
@snapshot.reads("files", lambda arguments: [arguments["home"]])
@operation()
def system_account(user: str, home: str, shell: str):
    """
    Make a system user with its home directory (owned by it) and shell, like server.user(system=True, ...),
    asking nothing of the server while the host snapshot says it exists as wanted; server.user does the rest.

    + user: the user name (its group has the same name)
    + home: its home directory
    + shell: its login shell

    **Example:**

    .. code:: python

        system_account(name="App user links", user="links", home="/srv/links", shell="/usr/sbin/nologin")
    """
    known_user, lines = snapshot.lookup("commands", passwd_entry_command(user))
    known_home, home_state = snapshot.lookup("files", home)
    fields = lines[0].split(":") if known_user and lines else []
    if (
        len(fields) == 7
        and fields[5] == home
        and fields[6] == shell
        and known_home
        and home_state
        and home_state["type"] == "directory"
        and (home_state["user"], home_state["group"]) == (user, user)
    ):
        host.noop(f"user {user} exists with its home {home} and shell {shell}")
        return
    yield from server.user._inner(user=user, system=True, home=home, shell=shell)


@snapshot.reads("files", lambda arguments: arguments["paths"])
@operation()
def command_unless_files(command: str, paths: list[str]):
    """
    Run a command that makes files, unless each of them already is a regular file.

    + command: shell command to run
    + paths: the files it makes

    **Example:**

    .. code:: python

        command_unless_files(name="Self-signed certificate", command=openssl_command, paths=[certificate, key])
    """
    states = [_file_state(path) for path in paths]
    if all(state and state["type"] == "file" for state in states):
        host.noop(f"{', '.join(paths)} exist")
        return
    yield command


def as_postgres(sql: str) -> str:
    """Returns the shell command running `sql` with psql as the postgres superuser."""
    return f"runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}"


class PostgresCatalog(FactBase):
    """Returns {"roles": {name: password verifier}, "databases": {name: owner}}; empty without psql.

    Runs psql through runuser as root, so it also works on a blank box at planning time.
    """

    def command(self) -> str:
        query = (
            "SELECT 'role', rolname, coalesce(rolpassword, '') FROM pg_authid"
            " UNION ALL SELECT 'database', datname, pg_get_userbyid(datdba) FROM pg_database"
        )
        return (
            "command -v psql >/dev/null && id postgres >/dev/null 2>&1"
            f" && runuser -u postgres -- psql -X -tA -F '|' -c {shlex.quote(query)} 2>/dev/null || true"
        )

    def process(self, output: list[str]) -> dict:
        catalog: dict = {"roles": {}, "databases": {}}
        for line in output:
            kind, name, value = line.split("|", 2)
            catalog["roles" if kind == "role" else "databases"][name] = value
        return catalog


def _catalog() -> dict:
    """PostgresCatalog's answer, from the host snapshot while it may be used, else asked."""
    known, lines = snapshot.lookup("commands", PostgresCatalog().command())
    return PostgresCatalog().process(lines) if known else host.get_fact(PostgresCatalog)


@snapshot.reads("commands", lambda arguments: [PostgresCatalog().command()])
@operation()
def postgres_login_role(role: str, password: str):
    """
    Make a PostgreSQL login role with a password; no change when the stored verifier matches.

    The password never appears in a command: a SCRAM-SHA-256 verifier is computed here and sent
    instead (pyinfra's postgres.role with a password changes on every run, pyinfra issue 1418).

    + role: the role name
    + password: its clear password

    **Example:**

    .. code:: python

        postgres_login_role(role="links", password=secrets.database_password("links"))
    """
    stored = _catalog()["roles"].get(role)
    if stored and scram.verify(password, stored):
        host.noop(f"postgres role {role} exists with the wanted password")
        return
    verifier = scram.make_verifier(password)
    yield as_postgres(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f'THEN CREATE ROLE "{role}" LOGIN; END IF; END $$; '
        f"ALTER ROLE \"{role}\" LOGIN PASSWORD '{verifier}';"
    )


@snapshot.reads("commands", lambda arguments: [PostgresCatalog().command()])
@operation()
def postgres_database(database: str, owner: str):
    """
    Make a UTF-8 PostgreSQL database owned by `owner`; no change when it exists with that owner.

    + database: the database name
    + owner: the role that owns it

    **Example:**

    .. code:: python

        postgres_database(database="links", owner="links")
    """
    current_owner = _catalog()["databases"].get(database)
    if current_owner == owner:
        host.noop(f"database {database} exists, owned by {owner}")
    elif current_owner is None:
        yield f"runuser -u postgres -- createdb --encoding=UTF8 --template=template0 --owner={owner} {database}"
    else:
        yield as_postgres(f'ALTER DATABASE "{database}" OWNER TO "{owner}"')


def marker_command(marker: str) -> str:
    """The shell command printing a marker file (nothing when it is missing)."""
    return f"cat {shlex.quote(marker)} 2>/dev/null || true"


@snapshot.reads("commands", lambda arguments: [marker_command(arguments["marker"])])
@operation()
def command_once_per_value(command: str, marker: str, value: str):
    """
    Run a command once for each distinct value (a release checksum, say), recorded in a marker file.

    A failed run leaves the old marker, so the next deploy tries again.

    + command: shell command to run
    + marker: file on the server recording the value of the last successful run
    + value: what the marker must say for the command to be skipped

    **Example:**

    .. code:: python

        command_once_per_value(command="venv/bin/pip install --no-index app.whl",
                               marker="/srv/links/.installed", value=wheel_sha256)
    """
    known, current = snapshot.lookup("commands", marker_command(marker))
    if not known:
        current = host.get_fact(FileContents, path=marker)
    if current and current[0].strip() == value:
        host.noop(f"already done for {value[:16]} ({marker})")
        return
    yield command
    yield make_marker_write_command(marker, value)


class TimerSchedule(FactBase):
    """Returns what systemd holds loaded for a timer: {"LoadState", "ActiveState", "SubState",
    "NeedDaemonReload", "NextElapseUSecRealtime"} ({} when systemctl cannot say)."""

    def command(self, timer: str) -> str:
        properties = " ".join(f"-p {name}" for name in ("LoadState", "ActiveState", "SubState", "NeedDaemonReload"))
        return f"systemctl show {properties} -p NextElapseUSecRealtime {shlex.quote(timer)} 2>/dev/null || true"

    def process(self, output: list[str]) -> dict:
        return dict(line.split("=", 1) for line in output if "=" in line)


def next_elapse_check_command(timer: str) -> str:
    """Returns the shell command that fails, saying why, unless `timer` is active with a next elapse time,
    or active (running): its service runs now, and systemd sets the next elapse time when it ends.

    Names each OnCalendar value that systemd rejects, with the file it is in.
    """
    quoted = shlex.quote(timer)
    calendars = 'awk \'/^# \\//{file=$2} /^OnCalendar=./{sub(/^OnCalendar=/, ""); print file "\\t" $0}\''
    return (
        f"next=$(systemctl show -p NextElapseUSecRealtime --value {quoted}); state=$(systemctl is-active {quoted});"
        f" sub=$(systemctl show -p SubState --value {quoted});"
        ' [ "$state" = active ] && { [ -n "$next" ] || [ "$sub" = running ]; } && exit 0;'
        ' state="$state ($sub)";'
        f' echo "{timer} has no next run (it is $state): what it starts would silently stop running." >&2;'
        f" systemctl cat {quoted} 2>/dev/null | {calendars} | while IFS=\"$(printf '\\t')\" read -r file value; do"
        """ systemd-analyze calendar "$value" >/dev/null 2>&1 || echo "  $file: OnCalendar=$value is not a"""
        """ calendar expression systemd accepts (see: systemd-analyze calendar '$value')" >&2; done;"""
        f' echo "  then: systemctl status {timer}" >&2; exit 1'
    )


def restart_timer_command(timer: str) -> str:
    """Returns the shell command restarting `timer`, then failing with next_elapse_check_command's reasons unless
    it has a next run (a failed restart is explained by that check too)."""
    return f"systemctl restart {shlex.quote(timer)}; {next_elapse_check_command(timer)}"


@operation()
def timer_scheduled(timer: str):
    """
    Make a timer run its file's schedule, with a next run: reloaded and restarted when systemd needs a reload,
    or the timer is not active or has no next elapse time, then checked; no change otherwise.

    pyinfra's systemd.service neither restarts nor starts a timer that is `active (elapsed)` (it takes it for
    stopped, and starting an active unit does nothing), which a schedule systemd rejected leaves behind.

    + timer: the timer unit, e.g. phoenix-backup-files.timer

    **Example:**

    .. code:: python

        timer_scheduled(name="phoenix-backup-files.timer running", timer="phoenix-backup-files.timer")
    """
    loaded = host.get_fact(TimerSchedule, timer=timer)
    stale = loaded.get("NeedDaemonReload") == "yes"
    if not stale and loaded.get("ActiveState") == "active" and loaded.get("NextElapseUSecRealtime"):
        host.noop(f"{timer} next runs {loaded['NextElapseUSecRealtime']}")
        return
    if not stale and loaded.get("ActiveState") == "active" and loaded.get("SubState") == "running":
        # what it starts runs now; systemd shows no next elapse time until that ends, then sets one
        host.noop(f"{timer} is running its service")
        return
    if stale:
        yield "systemctl daemon-reload"
    yield restart_timer_command(timer)


@operation()
def check_passes(check: str, wait: str):
    """
    A check that changes nothing: no change when `check` passes; otherwise `wait` runs, and fails
    (failing the deploy) unless the check passes in time.

    + check: shell command exiting 0 when all is well (a single quick try)
    + wait: shell command that retries the check for a while and exits non-zero when it never passes

    **Example:**

    .. code:: python

        check_passes(check="curl -fsS http://127.0.0.1:8000/health", wait=wait_command, _if=nothing_changed)
    """
    answer = host.get_fact(Command, command=f"if {check} >/dev/null 2>&1; then echo passed; else echo failed; fi")
    if answer == "passed":
        host.noop(f"passes: {check}")
        return
    yield wait
