"""Inventory checks beyond JSON Schema's own keywords, reported like schema errors.

The schema names a `format` for addresses, time zones, OnCalendar schedules and absolute paths;
FORMAT_CHECKER checks them (phoenix/inventory.py validates with it). Checks that need a host's
merged settings: port_clash_errors() (ports that clash on one host) and, for runs that build
the app, source_errors() (app sources that do not exist).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import zoneinfo
from pathlib import Path

import jsonschema

from phoenix import oncalendar
from phoenix.artifact import pypi_release
from phoenix.errors import PhoenixError
from phoenix.git_source import is_git_source, split_git_source

POSTGRES_PORT = 5432  # Debian's PostgreSQL, which roles/postgres.py leaves on its default port
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"(\*\.)?{LABEL}(\.{LABEL})*\.?")  # a leading *. for nginx's wildcard server names
DOTTED = re.compile(r"[0-9.]+")

FORMAT_CHECKER = jsonschema.FormatChecker(formats=())


@FORMAT_CHECKER.checks("ip-address", raises=ValueError)
def check_ip_address(value: object) -> bool:
    """An IPv4 or IPv6 address; empty means "not set" (the schema's default)."""
    if isinstance(value, str) and value:
        _check_address(value)
    return True


def _check_address(value: str) -> None:
    """Raises ValueError saying what is wrong with an IPv4 (or, with a colon, IPv6) address."""
    version, parse = ("IPv6", ipaddress.IPv6Address) if ":" in value else ("IPv4", ipaddress.IPv4Address)
    try:
        parse(value)
    except ValueError as error:
        raise ValueError(f"is not a valid {version} address ({error})") from None


@FORMAT_CHECKER.checks("host-or-address", raises=ValueError)
def check_host_or_address(value: object) -> bool:
    """A host name or an IP address; digits and dots only must make a valid IPv4 address."""
    if not isinstance(value, str) or not value:
        return True
    if DOTTED.fullmatch(value) or ":" in value:
        _check_address(value)
    elif len(value) > 253 or not HOST_NAME.fullmatch(value):
        raise ValueError("is not a host name (letters, digits, dashes and dots) or an IP address")
    return True


@FORMAT_CHECKER.checks("ipv4-network", raises=ValueError)
def check_ipv4_network(value: object) -> bool:
    """An IPv4 address or network in CIDR notation with no host bits set (10.0.0.0/24)."""
    if not isinstance(value, str):
        return True
    try:
        ipaddress.IPv4Network(value)
    except ValueError as error:
        if "has host bits set" in str(error):
            network = ipaddress.IPv4Network(value, strict=False)
            raise ValueError(f"has host bits set: did you mean '{network}'?") from None
        raise ValueError(f"is not an IPv4 address or network such as 203.0.113.0/24 ({error})") from None
    return True


@functools.cache
def time_zones() -> frozenset[str]:
    """Returns the names of the control machine's zoneinfo database."""
    return frozenset(zoneinfo.available_timezones())


@FORMAT_CHECKER.checks("timezone", raises=ValueError)
def check_timezone(value: object) -> bool:
    """A time zone name of the zoneinfo database (Europe/Paris, Etc/UTC)."""
    if not isinstance(value, str) or value in time_zones():
        return True
    if not time_zones():
        raise ValueError("cannot be checked: this machine has no zoneinfo database (install tzdata)")
    closest = difflib.get_close_matches(value, time_zones(), n=1)
    suggestion = f"; did you mean '{closest[0]}'?" if closest else " (see /usr/share/zoneinfo)"
    raise ValueError(f"is not a time zone of the zoneinfo database{suggestion}")


@FORMAT_CHECKER.checks("systemd-calendar", raises=ValueError)
def check_calendar(value: object) -> bool:
    """A systemd OnCalendar expression, as `systemd-analyze calendar` accepts it."""
    if not isinstance(value, str):
        return True
    problem = oncalendar.problem(value)
    if problem:
        raise ValueError(f"is not a systemd OnCalendar expression ({problem}); {oncalendar.hint(value)}")
    return True


@FORMAT_CHECKER.checks("absolute-path", raises=ValueError)
def check_absolute_path(value: object) -> bool:
    """A path on the server starting with /; empty means "not set"."""
    if isinstance(value, str) and value and not value.startswith("/"):
        raise ValueError("is not an absolute path (it must start with /)")
    return True


# options that moved: where an inventory written for an older Phoenix finds them now
MOVED_OPTIONS = {
    ("drill", "known_record_query"): "it is app.known_record_query now, one per app (defaults.app for every host)",
}


def format_message(error: jsonschema.ValidationError) -> str:
    """Returns a schema error's message, in words for the formats above and with the new place of a moved option."""
    if error.validator == "format" and error.cause is not None:
        return f"{error.instance!r} {error.cause}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        parent = tuple(error.absolute_path)[-1:]
        moved = [MOVED_OPTIONS[(*parent, key)] for key in error.instance if (*parent, key) in MOVED_OPTIONS]
        if moved:
            return f"{error.message}: {'; '.join(moved)}"
    return error.message


def _ports_in_use(host: dict) -> list[tuple[str, int, str]]:
    """Returns (key path, port, who listens) for every port a host's roles listen on."""
    roles = host["roles"]
    ports = [("ssh.port", host["ssh"]["port"], "sshd")]
    if "nginx" in roles:
        ports += [("roles", 80, "nginx (HTTP)"), ("roles", 443, "nginx (HTTPS)")]
    if "postgres" in roles:
        ports.append(("roles", POSTGRES_PORT, "PostgreSQL (postgres role)"))
    if "app" in roles:
        ports.append(("app.port", host["app"]["port"], "the app (app.port)"))
    if "vault" in roles:
        ports.append(("vault.port", host["vault"]["port"], "the vault (vault.port)"))
    return ports


def port_errors(filename: str, name: str, host: dict) -> list[str]:
    """Returns one message per port that two services of host `name` would both listen on."""
    errors = []
    seen: dict[int, str] = {}
    for key, port, who in _ports_in_use(host):
        if port in seen:
            errors.append(f"{filename}: at 'hosts.{name}.{key}': port {port} is taken by {seen[port]} on this host")
        else:
            seen[port] = who
    return errors


def source_problem(source: str, base: Path) -> str | None:
    """Given an app source (relative to `base`), returns None when a wheel can be built from it or it names a
    release on PyPI (`name[extras]==version`, which its lock must pin), else why not."""
    if pypi_release(source):
        return None
    if is_git_source(source):
        try:
            split_git_source(source)
        except PhoenixError as error:
            return str(error).removeprefix("app.source: ")
        return None  # fetched when the release is built: no network here
    path = base / source
    if path.suffix == ".whl":
        return None if path.is_file() else f"wheel {path} not found"
    if not path.is_dir():
        return f"directory {path} not found (expected a directory with a pyproject.toml, or a .whl)"
    if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
        return f"{path} has no pyproject.toml or setup.py"
    return None


def source_errors(filename: str, hosts: dict[str, dict], base: Path) -> list[str]:
    """Returns one message per app source or release of an app host that does not exist under `base`.

    Relative sources resolve against `base`, the directory pyinfra runs in (the repository).
    """
    errors = []
    for name, host in hosts.items():
        if "app" not in host["roles"]:
            continue
        app = host["app"]
        sources = [("app.source", app["source"])]
        for version, release in app["releases"].items():
            if isinstance(release, dict):  # {source, lock}: a release with a lock of its own
                sources.append((f"app.releases.{version}.source", release["source"]))
                if not (base / release["lock"]).is_file():
                    errors.append(
                        f"{filename}: at 'hosts.{name}.app.releases.{version}.lock': lock {base / release['lock']}"
                        " not found"
                    )
            else:
                sources.append((f"app.releases.{version}", release))
        for key, source in sources:
            problem = source_problem(source, base)
            if problem:
                errors.append(f"{filename}: at 'hosts.{name}.{key}': {problem}")
    return errors


def port_clash_errors(filename: str, hosts: dict[str, dict]) -> list[str]:
    """Given merged host settings, returns one message per port two services of one host would share."""
    return [error for name, host in hosts.items() for error in port_errors(filename, name, host)]


def static_errors(filename: str, hosts: dict[str, dict]) -> list[str]:
    """Given merged host settings, returns one message per app host whose app.static_command has no
    app.static_dir to collect into."""
    return [
        f"{filename}: at 'hosts.{name}.app.static_command': it collects into app.static_dir, which is not set:"
        " set app.static_dir (nginx serves it at /static/), the directory the app's settings collect into"
        for name, host in hosts.items()
        if "app" in host["roles"] and host["app"]["static_command"] and not host["app"]["static_dir"]
    ]


WORKER_PLACEHOLDERS = {"python": "", "config": ""}


def worker_errors(filename: str, hosts: dict[str, dict]) -> list[str]:
    """Given merged host settings, returns one message per app.processes or app.periodic entry whose name is
    already taken on its host (the two lists share the <app>-<name> unit names) or whose command names a
    placeholder other than {python} and {config}."""
    errors = []
    for name, host in hosts.items():
        if "app" not in host["roles"]:
            continue
        seen: dict[str, str] = {}
        for key in ("processes", "periodic"):
            for index, entry in enumerate(host["app"][key]):
                where = f"{filename}: at 'hosts.{name}.app.{key}.{index}"
                if entry["name"] in seen:
                    errors.append(
                        f"{where}.name': {entry['name']!r} is taken by {seen[entry['name']]}: each process and"
                        " periodic command needs a name of its own (it names the unit)"
                    )
                else:
                    seen[entry["name"]] = f"app.{key}.{index}"
                try:
                    entry["command"].format(**WORKER_PLACEHOLDERS)
                except (KeyError, IndexError, ValueError) as error:
                    errors.append(
                        f"{where}.command': {entry['command']!r} has a placeholder other than {{python}} and"
                        f" {{config}} ({type(error).__name__}: {error}); write a literal brace as {{{{ or }}}}"
                    )
    return errors
