"""A scheduled systemd service: pyinfra has no timer operation, so the unit pair is templated here."""

from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from roles.operations import restart_timer_command, template_file, timer_scheduled

UNIT_DIRECTORY = "/etc/systemd/system"


def scheduled_service(name: str, service_template: str, timer_template: str, schedule: str, **variables) -> None:
    """Installs NAME.service and NAME.timer from templates (which see `schedule` and `variables`), timer enabled,
    restarted when either file changed or the loaded timer is stale or has no next run; fails when it still has none."""
    service = template_file(
        name=f"{name}.service",
        src=service_template,
        dest=f"{UNIT_DIRECTORY}/{name}.service",
        mode="0644",
        schedule=schedule,
        **variables,
    )
    timer = template_file(
        name=f"{name}.timer ({schedule})",
        src=timer_template,
        dest=f"{UNIT_DIRECTORY}/{name}.timer",
        mode="0644",
        schedule=schedule,
        **variables,
    )
    changed = any_changed(service, timer)
    systemd.daemon_reload(name=f"Reload units for {name}", _if=changed)
    # started by the restart below and by timer_scheduled: systemd.service cannot tell an elapsed timer is active
    systemd.service(name=f"{name}.timer enabled", service=f"{name}.timer", running=None, enabled=True)
    server.shell(name=f"Restart {name}.timer", commands=[restart_timer_command(f"{name}.timer")], _if=changed)
    # A deploy that broke off after writing the files left nothing for did_change to see: the loaded timer decides
    timer_scheduled(name=f"{name}.timer running, with a next run", timer=f"{name}.timer")
