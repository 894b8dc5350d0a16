"""The README's local run: the sample request walks through every stage against the running stack."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from tests.e2e.conftest import Stack


def test_the_walkthrough_takes_the_sample_request_through_every_stage(stack: Stack):
    result = subprocess.run(
        [sys.executable, "-m", "local.walkthrough", "--tenant", stack.tenant.url, "--host", stack.host.url],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "EM called our function (HTTP 202): waitingForCallback" in result.stdout
    assert "Checks passed" in result.stdout
    assert "methods after: password" in result.stdout
