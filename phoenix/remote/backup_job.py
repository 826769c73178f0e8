"""phoenix-backup: a data host's backup jobs (run by systemd timers, backup.py, or by hand).

    phoenix-backup run JOB|all [--trigger scheduled|manual|pre-upgrade] [--pin REASON] [--records]
                                               (--pin only asks: the control machine has the
                                               vault pin the run, see phoenix/pins.py; --records
                                               ends the output with the runs' status records, JSON)
    phoenix-backup watch files                 run the files job if its data paths (all but /etc) changed
                                               since its last run began (its watch timer, every 30 s)
    phoenix-backup watch-state files           whether its data paths are as its last run found them (JSON;
                                               the drill's real RPO of the files)
    phoenix-backup status                      newest result of each job (JSON; a run recorded as running
                                               that no process runs is shown interrupted)
    phoenix-backup runs [--job JOB]            the runs in the repository (JSON)
    phoenix-backup verify-restore JOB [--run RUN]
                                               restore a database run into a scratch database
                                               and compare it with the run's manifest

    phoenix-backup restore-db JOB --run RUN [--force]
    phoenix-backup restore-files --run RUN --paths P... [--owner USER]
                                               what restore.py runs (see phoenix/remote/restore.py)

The entry point only parses and dispatches: the backup commands are in phoenix/remote/backup.py,
the restore commands in phoenix/remote/restore.py, what both share in phoenix/remote/backup_host.py.
Exit status: 0 done, 1 failed, 2 bad usage, 3 refused (a restore over live data).
"""

from __future__ import annotations

import argparse
import sys

from phoenix.arguments import StrictParser
from phoenix.remote import backup, restore
from phoenix.remote.backup import TRIGGERS
from phoenix.remote.backup_host import Config
from phoenix.remote.common import JobError, RefusedError

COMMANDS = {**backup.COMMANDS, **restore.COMMANDS}


def parser() -> argparse.ArgumentParser:
    top = StrictParser(prog="phoenix-backup", description="This host's off-site backups.")
    verbs = top.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run", help="run backup jobs now")
    run.add_argument("job", nargs="+", help="job names, or all")
    run.add_argument("--trigger", choices=TRIGGERS, default="manual")
    run.add_argument(
        "--pin", default="", help="ask for a pin (a tag): only the vault, asked by the control machine, pins a run"
    )
    run.add_argument(
        "--records", action="store_true", help="end the output with each job's final status record (one JSON line)"
    )
    watch = verbs.add_parser("watch", help="run a files job now if its data paths changed since its last run began")
    watch.add_argument("job")
    watch_state = verbs.add_parser("watch-state", help="whether a files job's data are as its last run found them")
    watch_state.add_argument("job")
    verbs.add_parser("status", help="the last result of each job, as JSON")
    runs = verbs.add_parser("runs", help="the runs in the repository, as JSON")
    runs.add_argument("--job", default="")
    verify = verbs.add_parser("verify-restore", help="restore a database run into a scratch database and check it")
    verify.add_argument("job")
    verify.add_argument("--run", default="", help="run id (default: the latest complete one)")
    restore_db = verbs.add_parser("restore-db", help="restore a database run over the live database (restore.py)")
    restore_db.add_argument("job")
    restore_db.add_argument("--run", required=True)
    restore_db.add_argument("--force", action="store_true", help="replace a database that holds data")
    restore_files = verbs.add_parser("restore-files", help="restore paths of a files run (restore.py)")
    restore_files.add_argument("--run", required=True)
    restore_files.add_argument("--paths", nargs="+", required=True)
    restore_files.add_argument("--owner", default="", help="user that owns the restored paths")
    return top


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return COMMANDS[arguments.verb](Config(), arguments)
    except RefusedError as error:
        print(f"phoenix-backup: {error}", file=sys.stderr)
        return 3
    except JobError as error:
        print(f"phoenix-backup: {error}", file=sys.stderr)
        return 1
    except PermissionError as error:
        print(f"phoenix-backup: {error}; run it as root", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
