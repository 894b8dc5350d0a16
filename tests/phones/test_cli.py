"""`python -m phones sync` (in-process through typer's runner) against the local tenant and Azurite."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from local.tenant import TenantServer
from local.tenant.fixtures import make_default as F
from phones.cli import app
from tests.phones.helpers import mobile_of, phone_writes


@pytest.fixture
def cli_env(tenant_env: TenantServer, azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("TABLE_PREFIX", f"cli{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("PHONE_DEFAULT_REGION", "DE")
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {}}))
    return settings


def run(*args: str):
    return CliRunner().invoke(app, ["sync", *args], catch_exceptions=False)


def test_dry_run_over_the_staging_group_prints_the_plan_and_writes_nothing(cli_env, tenant_env):
    result = run("--dry-run", "--group", F.G["phone_staging"], "--settings", str(cli_env))
    assert result.exit_code == 0, result.output
    assert "Status: nora@" in result.output
    assert "dry-run add +49 15123456789" in result.output
    assert "Stats: Users: 3, Numbers added: 1," in result.output  # priya is registered already
    summary = json.loads(result.output.split("Summary: ", 1)[1].strip().replace("\n", ""))
    assert summary["dryRun"] is True
    assert not phone_writes(tenant_env)


def test_a_users_file_in_authoritative_mode(cli_env, tenant_env, tmp_path: Path):
    tenant_env.state.users[F.U["tom"]]["mobilePhone"] = "+1 206 555 0109"
    users = tmp_path / "users.txt"
    users.write_text(f"# the list\n{F.U['tom']}\n{F.U['nora']}\n\nnobody@contoso.local\n")
    result = run("--users", str(users), "--mode", "authoritative", "--settings", str(cli_env))
    assert result.exit_code == 0, result.output
    assert mobile_of(tenant_env, F.U["tom"]) == "+1 2065550109"
    assert mobile_of(tenant_env, F.U["nora"]) == "+49 15123456789"
    assert "Numbers updated: 1" in result.output
    assert "not found" in result.output


def test_a_bad_mode_is_refused(cli_env):
    result = CliRunner().invoke(app, ["sync", "--mode", "wipe", "--settings", str(cli_env)])
    assert result.exit_code != 0
    assert "add or authoritative" in result.output
