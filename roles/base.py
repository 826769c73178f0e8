"""Base system: packages, host name, time zone, locale, admins, sshd, updates, journald."""

from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd

from roles.operations import (
    apt_lists_fresh,
    host_name,
    managed_link,
    packages_installed,
    put_file,
    service_running,
    template_file,
)

BASE_PACKAGES = ["openssh-server", "sudo", "tzdata", "curl", "python3-venv"]


def packages(data) -> list[str]:
    """Given a host's data, the Debian packages the base role installs."""
    optional = {"unattended-upgrades": data.unattended_upgrades, "locales": data.locale != "C.UTF-8"}
    return [*BASE_PACKAGES, *(package for package, wanted in optional.items() if wanted)]


@deploy("Base system")
def apply(other_roles_packages: list[str] | None = None) -> None:
    """other_roles_packages (roles/host_packages.py) are installed in the base packages' apt transaction."""
    _packages(other_roles_packages or [])
    _access()
    _settings()


@deploy("Base system")
def before_data(other_roles_packages: list[str]) -> None:
    """restore.py's part before the data come back: the packages, and who may log in and how (no root or password
    login on a host about to hold them); settings() follows while they restore."""
    _packages(other_roles_packages)
    _access()


@deploy("Base system")
def settings() -> None:
    """Host name, time zone, locale, automatic updates, journald: nothing the data restore needs."""
    _settings()


def _packages(other_roles_packages: list[str]) -> None:
    apt_lists_fresh(name="Refresh apt lists (at most daily)", cache_time=86400)
    own = packages(host.data)
    others = [package for package in other_roles_packages if package not in own]
    packages_installed(
        name="Install base packages" + (f" and the roles' {' '.join(others)}" if others else ""),
        packages=[*own, *others],
    )


def _access() -> None:
    _admins(host.data.admins)
    _sshd(host.data.ssh["port"])


def _settings() -> None:
    host_name(name="Set host name", hostname=host.data.hostname)
    _time_zone(host.data.timezone)
    if host.data.locale != "C.UTF-8":
        _locale(host.data.locale)
    if host.data.unattended_upgrades:
        template_file(
            name="Enable unattended security upgrades",
            src="templates/base/etc/apt/apt.conf.d/20auto-upgrades.j2",
            dest="/etc/apt/apt.conf.d/20auto-upgrades",
            mode="0644",
        )
    _journald(host.data.journald)


def _time_zone(zone: str) -> None:
    managed_link(name=f"Time zone {zone}", path="/etc/localtime", target=f"/usr/share/zoneinfo/{zone}")
    put_file(name="Record time zone", src=_text(zone), dest="/etc/timezone", mode="0644")


def _locale(locale: str) -> None:
    charset = locale.split(".", 1)[1] if "." in locale else "UTF-8"
    wanted = files.line(
        name=f"Enable locale {locale}",
        path="/etc/locale.gen",
        line=f"^#? *{locale} ",
        replace=f"{locale} {charset}",
    )
    server.shell(name="Generate locales", commands=["locale-gen"], _if=wanted.did_change)
    put_file(name="Default locale", src=_text(f"LANG={locale}"), dest="/etc/default/locale", mode="0644")


def _admins(admins: list[dict]) -> None:
    for admin in admins:
        server.user(
            name=f"Admin user {admin['name']}",
            user=admin["name"],
            shell="/bin/bash",
            groups=["sudo"],
            public_keys=admin["ssh_keys"],
            delete_keys=True,
        )
    template_file(
        name="Password-less sudo for admins",
        src="templates/base/etc/sudoers.d/phoenix-admins.j2",
        dest="/etc/sudoers.d/phoenix-admins",
        mode="0440",
        admins=admins,
    )


def _sshd(port: int) -> None:
    config = template_file(
        name="sshd: no root login, no passwords",
        src="templates/base/etc/ssh/sshd_config.d/phoenix.conf.j2",
        dest="/etc/ssh/sshd_config.d/phoenix.conf",
        mode="0644",
        port=port,
    )
    service_running(name="sshd running", service="ssh")
    systemd.service(name="Reload sshd", service="ssh", reloaded=True, _if=config.did_change)


def _journald(limits: dict) -> None:
    config = template_file(
        name="journald limits",
        src="templates/base/etc/systemd/journald.conf.d/phoenix.conf.j2",
        dest="/etc/systemd/journald.conf.d/phoenix.conf",
        mode="0644",
        max_use=limits["max_use"],
        max_retention=limits["max_retention"],
    )
    systemd.service(name="Restart journald", service="systemd-journald", restarted=True, _if=config.did_change)


def _text(line: str) -> StringIO:
    return StringIO(line + "\n")
