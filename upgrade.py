"""Upgrade the app, unable to lose data: `pyinfra inventories/prod.py upgrade.py [--data version=X]`.

    --data version=2.0.0        install release 2.0.0 of app.releases (default: app.source)
    --data source=PATH          install this directory or .whl instead (a release not in the inventory)
    --data reason="..."         why, said in the pin (default: "pre-upgrade <host>: <app> to <version>")

On each app host: pause the backup timers (its own and its database host's) and hold
retention on the vault; stop the app; back up every job of those hosts, tagged pre-upgrade and
pinned; wait until the vault has verified those runs (or start the old release again and stop
here); install, migrate, start, verify (health, schema version, a request through nginx). Any
failure: reinstall the previous release, restore the pinned runs, verify, report "rolled back".
Timers always resume; a killed run is finished by the next one (phoenix/upgrade.py). The record
is printed and kept in /var/lib/phoenix/upgrade/history.jsonl on the host.
"""

from pathlib import Path

from pyinfra import host, state
from pyinfra.operations import files, python

from phoenix import upgrade as safe_upgrade
from phoenix.artifact import artifact_for
from phoenix.errors import PhoenixError, refuse
from roles import upgrade_plan

if "app" in host.data.roles:
    try:
        SOURCE, SETTINGS = upgrade_plan.release_source(host.data)
        WHEEL = artifact_for(SETTINGS, SOURCE)
        PLAN = upgrade_plan.plan_for(host.data, WHEEL, state.inventory)
    except PhoenixError as error:
        refuse(f"phoenix: upgrade.py stopped before changing anything on {host.data.phoenix_host}:\n{error}")
    files.put(
        name=f"Upload {Path(PLAN.target.wheel).name}",
        src=str(WHEEL),
        dest=PLAN.target.wheel,
        mode="0644",
    )
    python.call(
        name=f"Upgrade {PLAN.app['name']} to {PLAN.target.version}",
        function=safe_upgrade.run_upgrade,
        plan=PLAN,
        inventory=host.data.phoenix_inventory,
    )
