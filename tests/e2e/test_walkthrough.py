"""The README's local run: the sample request walks through every stage against the running stack, and the pass it
reveals on the pickup page appears nowhere in what the walkthrough prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from local.tenant import TenantServer
from local.tenant import method_rules as rules
from tests.conftest import ROOT
from tests.e2e.conftest import Stack
from tests.notify.conftest import Sinks, notify_settings, set_notify_env


@pytest.fixture
def walkthrough_env(tenant: TenantServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """As local.settings.sample.json has it: every transport on, Easy Auth with the dev host's sign-in stand-in
    (set before the stack fixture builds the host). Yields the passes the tenant mints, to look for them."""
    settings = notify_settings(tenant)
    set_notify_env(monkeypatch, settings)
    monkeypatch.setenv("EASY_AUTH_ENABLED", "true")
    monkeypatch.setenv("DEVHOST_LOCAL_SIGNIN", "true")
    Sinks(tenant).control("PUT", "acs/limits", {"retryAfterSeconds": 0})
    minted: list[str] = []
    original = rules.tap_secret

    def remembered(length: int) -> str:
        secret = original(length)
        minted.append(secret)
        return secret

    monkeypatch.setattr(rules, "tap_secret", remembered)
    return minted


def test_the_walkthrough_takes_the_sample_request_through_every_stage(walkthrough_env: list[str], stack: Stack):
    command = [
        sys.executable, "-m", "local.walkthrough", "--tenant", stack.tenant.url, "--host", stack.host.url,
        "--function-key", stack.host.function_key, "--identity-header", stack.tenant.config.identity_header,
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=110, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "EM called our function (HTTP 202): waitingForCallback" in output
    assert "Checks passed" in output
    assert "Tom Target's methods now: password;" in output
    assert "done: pass ready for pickup" in output  # step 6: what the sinks received
    assert "Megan's notification holds the pickup link" in output
    assert "a Temporary Access Pass was shown once on the page (not printed here" in output
    assert "revealed at " in output
    assert "by Megan Manager" in output
    assert "The pass is deleted" in output
    assert "adminRemove request" in output
    assert "Our worker handled the removed stage" in output
    assert "Temporary Access Pass revealed for Tom Target" in output  # the channel's card after the reveal
    assert "methods after: password, fido2 (Microsoft Authenticator - iOS); onboarding group: not a member" in output
    [secret] = walkthrough_env  # the one pass revealed on the page
    assert secret not in output
