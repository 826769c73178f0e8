"""pyinfra's operation order, computed from the call stack without reading a source file.

In CLI mode pyinfra orders each operation by the line numbers of the call stack that added it, from the deploy
file down. pyinfra 3.10 gets them with `inspect.stack()`, which also reads a line of source for every frame and
looks up every frame's module: 4.6-9 ms an operation here (deeper stacks cost more), half of restore.py's load, and a
converge adds every operation once per host. The same frames' `co_filename` and `f_lineno` give the same numbers
(tests/unit/test_operation_order.py compares the two on nested deploy code).
"""

import importlib
import sys

import pyinfra
from pyinfra.api import util


def operation_order_from_stack(state) -> list[int]:
    """pyinfra.api.util.get_operation_order_from_stack, walking the frames: the line numbers of the call stack
    from the first frame of state's current deploy file down, pyinfra's own frames left out."""
    frames = []
    frame = sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    start = 0
    if state.current_deploy_filename:  # pyinfra's search ends on the last frame when the file is not in the stack
        filenames = [frame.f_code.co_filename for frame in frames]
        deploy = state.current_deploy_filename
        start = filenames.index(deploy) if deploy in filenames else len(frames) - 1
    line_numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    for frame in frames[start:]:
        if frame.f_code.co_filename.startswith(util.PYINFRA_INSTALL_DIR) or frame.f_code is _OWN_CODE:
            continue
        line_numbers.append(frame.f_lineno)
    return line_numbers


_OWN_CODE = operation_order_from_stack.__code__  # pyinfra's function leaves its own frame out, being pyinfra's


def install() -> None:
    """Makes pyinfra's operations use operation_order_from_stack (pyinfra.api.util's function stays as it is)."""
    # by its module's name: pyinfra.api's `operation` is the decorator of that name
    importlib.import_module("pyinfra.api.operation").get_operation_order_from_stack = operation_order_from_stack
