"""phoenix.operation_order orders operations exactly as pyinfra 3.10's own function, which it replaces."""

from __future__ import annotations

import importlib
import textwrap
from types import SimpleNamespace

import pyinfra
import pytest
from pyinfra.api import util

from phoenix import operation_order

# an operation added from a deploy file, through a role's function, in a loop, and from a nested function
DEPLOY = textwrap.dedent(
    """
    def role(record):
        for _ in range(2):
            step(record)

    def step(record):
        def inner():
            record()
        inner()

    record_operation()
    role(record_operation)
    """
)


def orders_from(deploy_filename: str, state) -> list[tuple[list[int], list[int]]]:
    """Runs DEPLOY as file `deploy_filename`; returns, for each operation it adds, pyinfra's order and ours."""
    found = []

    def record_operation():  # both computed on one line: each frame's line is the same for the two
        pair = (util.get_operation_order_from_stack, operation_order.operation_order_from_stack)
        found.append(tuple(compute(state) for compute in pair))

    code = compile(DEPLOY, deploy_filename, "exec")
    exec(code, {"record_operation": record_operation})
    return found


@pytest.mark.parametrize("cli", [True, False])
@pytest.mark.parametrize("deploy_in_stack", [True, False])
def test_the_order_is_pyinfras(monkeypatch, tmp_path, cli, deploy_in_stack):
    monkeypatch.setattr(pyinfra, "is_cli", cli)
    deploy = str(tmp_path / "deploy.py")
    state = SimpleNamespace(current_deploy_filename=deploy if deploy_in_stack else str(tmp_path / "other.py"))
    state.current_op_file_number = 7
    found = orders_from(deploy, state)
    assert len(found) == 3
    for pyinfras, phoenixs in found:
        assert phoenixs == pyinfras
    # from the deploy file down, the top-level call and the role's differ (pyinfra tells a loop's apart by count)
    assert len({tuple(phoenixs) for _, phoenixs in found}) == (2 if deploy_in_stack else 1)


def test_the_order_is_pyinfras_without_a_deploy_file(tmp_path):
    state = SimpleNamespace(current_deploy_filename=None, current_op_file_number=0)
    for pyinfras, phoenixs in orders_from(str(tmp_path / "deploy.py"), state):
        assert phoenixs == pyinfras


def test_roles_install_it_into_pyinfras_operations():
    importlib.import_module("roles")
    module = importlib.import_module("pyinfra.api.operation")
    assert module.get_operation_order_from_stack is operation_order.operation_order_from_stack
