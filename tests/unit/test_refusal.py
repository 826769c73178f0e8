"""A refusal while pyinfra loads a deploy file (phoenix.errors.refuse): the message as written, exit 2, no traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from phoenix.errors import refuse

MESSAGE = "phoenix: web1: nothing was changed: app.source: /srv/missing does not exist\nsecond line of the cause"


def test_refuse_prints_the_message_to_stderr_and_exits_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        refuse(MESSAGE)

    assert stopped.value.code == 2
    assert capsys.readouterr().err == MESSAGE + "\n"


def test_pyinfra_stops_on_a_refusal_in_a_deploy_file_with_the_message_alone(tmp_path):
    deploy = tmp_path / "refusing.py"
    deploy.write_text(f"from phoenix.errors import refuse\n\nrefuse({MESSAGE!r})\n")
    pyinfra = Path(sys.executable).with_name("pyinfra")

    result = subprocess.run([pyinfra, "-y", "@local", str(deploy)], capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert MESSAGE in result.stderr
    assert "Traceback" not in result.stderr and "pyinfra error" not in result.stderr
