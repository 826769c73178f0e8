"""Back up every data host now: `pyinfra inventories/prod.py backup.py`.

    --data pin="before the 2.0 upgrade"   pins the snapshots it makes (retention never removes them)
    --data backup_trigger=pre-upgrade     records why it ran (default: manual)

Runs each host's jobs with phoenix-backup, the program the nightly timers run. One backup runs
at a time per host: this waits for a scheduled run in progress instead of racing it, and both
runs keep their own snapshots. Add -v to see each job's report.
"""

from pyinfra import host
from pyinfra.operations import server

from roles.backup import now_command

if host.data.backup_jobs:
    server.shell(
        name="Back up now: " + ", ".join(job["name"] for job in host.data.backup_jobs),
        commands=[now_command(host.data.run_flags["backup_trigger"], host.data.run_flags["pin"] or "")],
    )
