"""A scheduled systemd service: pyinfra has no timer operation, so the unit pair is templated here."""

from pyinfra.operations import files, systemd

from roles.operations import timer_scheduled

UNIT_DIRECTORY = "/etc/systemd/system"


def scheduled_service(name: str, service_template: str, timer_template: str, schedule: str, **variables) -> None:
    """Installs NAME.service and NAME.timer from templates (which see `schedule` and `variables`), timer enabled,
    restarted when either file changed or the loaded timer is stale or has no next run; fails when it still has none."""
    service = files.template(
        name=f"{name}.service",
        src=service_template,
        dest=f"{UNIT_DIRECTORY}/{name}.service",
        mode="0644",
        schedule=schedule,
        **variables,
    )
    timer = files.template(
        name=f"{name}.timer ({schedule})",
        src=timer_template,
        dest=f"{UNIT_DIRECTORY}/{name}.timer",
        mode="0644",
        schedule=schedule,
        **variables,
    )
    systemd.daemon_reload(name=f"Reload units for {name}", _if=lambda: service.did_change() or timer.did_change())
    systemd.service(name=f"{name}.timer active", service=f"{name}.timer", running=True, enabled=True)
    systemd.service(
        name=f"Restart {name}.timer",
        service=f"{name}.timer",
        restarted=True,
        _if=lambda: service.did_change() or timer.did_change(),
    )
    # A deploy that broke off after writing the files left nothing for did_change to see: the loaded timer decides
    timer_scheduled(name=f"{name}.timer has a next run", timer=f"{name}.timer")
