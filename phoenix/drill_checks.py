"""What a drill checks on its restored hosts, with testinfra: the blueprint's services, then the
app serving the restored data (health, a known record over HTTPS, row counts and files equal
to the manifests).

Every check is a function of (host, context) returning a Check; a check that raises counts as
failed with the error as its detail, so one broken service never hides the others' results.
"""

from __future__ import annotations

import http.client
import json
import shlex
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import testinfra

from phoenix.commands import make_backup_run_command
from phoenix.remote.backup_host import COUNT_QUERY, row_counts


@dataclass
class Check:
    host: str
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Target:
    """One restored host: its settings, where it is, and what restore.py reported restoring."""

    name: str
    data: dict
    container: str
    address: str
    restored: dict[str, dict] = field(default_factory=dict)  # job -> the host's restore report
    recovered: dict | None = None  # restore.py's report of its PostgreSQL recovered from the vault's archive

    @property
    def server(self):
        return testinfra.get_host(f"docker://{self.container}")


class SniHTTPSConnection(http.client.HTTPSConnection):
    """Connects to an address but speaks TLS for the site's name (SNI and certificate check)."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext):
        super().__init__(address, 443, context=context, timeout=15)
        self.server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


def https_get(target: Target, path: str) -> tuple[int, bytes]:
    """GETs `path` through the host's nginx over TLS, trusting only the host's own certificate."""
    server_name = target.data["site"]["server_name"]
    certificate = target.server.file(f"/etc/ssl/phoenix/{server_name}.crt").content_string
    connection = SniHTTPSConnection(target.address, server_name, ssl.create_default_context(cadata=certificate))
    connection.request("GET", path, headers={"Host": server_name})
    response = connection.getresponse()
    return response.status, response.read()


def psql(target: Target, database: str, query: str) -> list[str]:
    command = f"runuser -u postgres -- psql -X -tA -F '\t' -d {shlex.quote(database)} -c {shlex.quote(query)}"
    result = target.server.run(command)
    if result.rc != 0:
        raise RuntimeError(f"psql on {target.name}: {result.stderr.strip()[-300:]}")
    return [line for line in result.stdout.splitlines() if line]


# --- the blueprint ----------------------------------------------------------------------


def base_services(target: Target, context: dict) -> Check:
    down = [name for name in ("ssh", "nftables") if not target.server.service(name).is_running]
    return Check(target.name, "ssh and the firewall run", not down, f"not running: {', '.join(down)}" if down else "")


def postgres_accepts(target: Target, context: dict) -> Check:
    result = target.server.run("runuser -u postgres -- pg_isready -q")
    return Check(target.name, "PostgreSQL accepts connections", result.rc == 0, result.stderr.strip())


def app_process(target: Target, context: dict) -> Check:
    app = target.data["app"]
    if app["process_manager"] == "supervisor":
        status = target.server.run(f"supervisorctl status {shlex.quote(app['name'])}").stdout.strip()
        ok = "RUNNING" in status
    else:
        ok = target.server.service(app["name"]).is_running
        status = "" if ok else f"systemd unit {app['name']} not running"
    return Check(target.name, f"the app runs under {app['process_manager']}", ok, "" if ok else status)


def https_health(target: Target, context: dict) -> Check:
    status, body = https_get(target, target.data["app"]["health_path"])
    return Check(target.name, "health answers 200 over HTTPS", status == 200, f"HTTP {status}: {body[:200]!r}")


def no_backups_from_a_stand_in(target: Target, context: dict) -> Check:
    timers = target.server.run("systemctl list-unit-files --no-legend 'phoenix-backup-*.timer'").stdout.split()
    refused = target.server.run(make_backup_run_command()).rc == 3
    ok = not timers and refused
    detail = f"timers: {timers}, phoenix-backup run refused: {refused}"
    return Check(target.name, "never backs up into the real repository", ok, detail)


# --- the restored data ------------------------------------------------------------------


def restores_matched(target: Target, context: dict) -> list[Check]:
    checks = []
    for job, report in sorted(target.restored.items()):
        problems = report.get("mismatched_tables") or report.get("missing_or_different")
        detail = "" if report["ok"] else json.dumps(problems)
        checks.append(Check(target.name, f"{job} restored as its manifest says", report["ok"], detail))
    return checks


def recovered_from_the_archive(target: Target, context: dict) -> list[Check]:
    if not target.recovered:
        return []
    recovered = target.recovered
    promoted = psql(target, "postgres", "SELECT pg_is_in_recovery()") == ["f"]
    newest = recovered["newest_transaction"] or "none after the base backup"
    detail = f"base backup {recovered['backup']} to {recovered['target']}; newest transaction {newest}"
    detail += "" if promoted else "; PostgreSQL is still in recovery"
    return [Check(target.name, "PostgreSQL recovered from the vault's archive and accepts writes", promoted, detail)]


def transient_tables(target: Target, database: str, context: dict) -> set[str]:
    """The app.transient_tables of the apps whose database `database` on `target` is."""
    return {
        table
        for app_host in context["targets"].values()
        if "app" in app_host.data["roles"]
        and context["database_host"](app_host) == target.name
        and app_host.data["app"]["database"]["name"] == database
        for table in app_host.data["app"]["transient_tables"]
    }


def rows_equal_manifest(target: Target, context: dict) -> list[Check]:
    checks = []
    for job, report in sorted(target.restored.items()):
        if "manifest_tables" not in report:
            continue
        live = row_counts(psql(target, report["database"], COUNT_QUERY))
        skipped = transient_tables(target, report["database"], context)
        expected = {table: rows for table, rows in report["manifest_tables"].items() if table not in skipped}
        differing = {table: [rows, live.get(table)] for table, rows in expected.items() if live.get(table) != rows}
        detail = f"{sum(live.values())} rows in {len(live)} tables" if not differing else f"manifest, live: {differing}"
        detail += f" (app.transient_tables left out: {', '.join(sorted(skipped))})" if skipped else ""
        checks.append(Check(target.name, f"{job}: row counts equal the manifest", not differing, detail))
    return checks


def files_present(target: Target, context: dict) -> list[Check]:
    report = target.restored.get("files")
    if not report:
        return []
    command = "find " + " ".join(map(shlex.quote, report["paths"])) + " -type f 2>/dev/null | wc -l"
    count = int(target.server.run(command).stdout.strip() or 0)
    ok = count >= report["files"]
    detail = f"{count} files here, {report['files']} in the backup"
    return [Check(target.name, "restored files are in place", ok, detail)]


def known_record_served(target: Target, context: dict) -> Check:
    """Looks up a record in the restored database and asks the app for it over HTTPS."""
    database_host = context["targets"][context["database_host"](target)]
    app = target.data["app"]
    rows = psql(database_host, app["database"]["name"], app["known_record_query"])
    if not rows:
        return Check(target.name, "a known record is served over HTTPS", False, "the restored database has no record")
    path, expected = (rows[0].split("\t") + [""])[:2]
    status, body = https_get(target, path)
    ok = status == 200 and expected in body.decode(errors="replace")
    return Check(target.name, "a known record is served over HTTPS", ok, f"GET {path}: HTTP {status}")


CHECKS: list[tuple[Callable[[dict], bool], Callable]] = [
    (lambda data: True, base_services),
    (lambda data: "postgres" in data["roles"], postgres_accepts),
    (lambda data: "app" in data["roles"], app_process),
    (lambda data: "nginx" in data["roles"], https_health),
    (lambda data: bool(data["backup_jobs"]), no_backups_from_a_stand_in),
    (lambda data: True, restores_matched),
    (lambda data: "postgres" in data["roles"], recovered_from_the_archive),
    (lambda data: "postgres" in data["roles"], rows_equal_manifest),
    (lambda data: True, files_present),
    (lambda data: "nginx" in data["roles"], known_record_served),
]


def run_checks(targets: dict[str, Target]) -> list[Check]:
    """Runs every check that applies to each target; returns them all, passed or failed."""

    def database_host(target: Target) -> str:
        host = target.data["app"]["database"]["host"]
        return target.name if host == "localhost" else host

    context = {"targets": targets, "database_host": database_host}
    results: list[Check] = []
    for target in targets.values():
        for applies, check in CHECKS:
            if not applies(target.data):
                continue
            try:
                outcome = check(target, context)
            except Exception as error:  # noqa: BLE001 - a broken check is a failed check, reported
                detail = f"{type(error).__name__}: {error}"
                outcome = Check(target.name, check.__name__.replace("_", " "), False, detail)
            results += outcome if isinstance(outcome, list) else [outcome]
    return results
