"""pyinfra's connector for a sandbox's containers: `@sandbox/phx-NAME-HOST`.

pyinfra's docker connector runs each command through `docker exec`; this one enters the running container with
nsenter (phoenix/container_shell.py), a tenth of the CPU per command. Files still travel with `docker cp`, as
with the docker connector. It never starts a container or an image: a sandbox host that is not running is an
error to report, not something to create.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from pyinfra.api import QuoteString, StringCommand
from pyinfra.api.exceptions import ConnectError, InventoryError
from pyinfra.connectors.docker import DockerConnector
from pyinfra.connectors.util import CommandOutput, extract_control_arguments, make_unix_command_for_host
from typing_extensions import Unpack, override

from phoenix import container_shell, sandbox_state
from phoenix.errors import PhoenixError

if TYPE_CHECKING:
    from pyinfra.api.arguments import ConnectorArguments


class SandboxConnector(DockerConnector):
    """Runs pyinfra's commands in a running sandbox container through nsenter."""

    @override
    @staticmethod
    def make_names_data(name=None):
        if not name:
            raise InventoryError("@sandbox needs a container name: @sandbox/phx-NAME-HOST")
        yield sandbox_state.pyinfra_host_name(name), {"docker_identifier": name}, ["@sandbox"]

    @override
    def connect(self) -> None:
        self.local.connect()
        name = self.data["docker_identifier"]
        try:
            self.container_id = container_shell.running(name).id
        except PhoenixError as error:
            raise ConnectError(str(error)) from error

    @override
    def disconnect(self) -> None:
        """Leaves the container as it is, silently: pyinfra's docker connector says "docker build complete,
        container left running" here, which a converge of a sandbox did not do."""

    @override
    def run_shell_command(
        self,
        command: StringCommand,
        print_output: bool = False,
        print_input: bool = False,
        **arguments: Unpack[ConnectorArguments],
    ) -> tuple[bool, CommandOutput]:
        local_arguments = extract_control_arguments(arguments)
        command = make_unix_command_for_host(self.state, self.host, command, **arguments)
        try:
            enter = container_shell.enter_argv(self.data["docker_identifier"], ["sh", "-c"])
        except PhoenixError as error:
            raise ConnectError(str(error)) from error
        entered = StringCommand(*(shlex.quote(part) for part in enter), QuoteString(command))
        return self.local.run_shell_command(
            entered, print_output=print_output, print_input=print_input, **local_arguments
        )
