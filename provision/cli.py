"""The provisioning CLI: plan prints the diff, apply applies it, status reports drift (exit 1 when drifted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from azure.identity.aio import DefaultAzureCredential
from rich.console import Console
from rich.table import Table

from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller

from .config import ProvisionConfig, load
from .diff import CREATE, OK, REVOKE, UPDATE, WARN, Change
from .engine import Provisioner
from .errors import ProvisionError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(width=160)
CONFIG = typer.Option(Path("provision.yaml"), "--config", "-c", help="the YAML describing the Entra side")
STYLE = {CREATE: "green", UPDATE: "yellow", OK: "dim", WARN: "magenta", REVOKE: "red"}
REVOKE_BROADER = typer.Option(
    False,
    "--revoke-broader",
    help="also revoke the broader Graph app roles a manual setup granted (after the least-privilege ones exist)",
)


def credential(cfg: ProvisionConfig) -> DefaultAzureCredential:
    """The operator's identity: azure-identity's chain (managed identity in Azure or on the local tenant, then
    az/azd sign-in). Interactive browser sign-in stays off so CI never hangs."""
    return DefaultAzureCredential(
        managed_identity_client_id=cfg.operator.managed_identity_client_id,
        exclude_interactive_browser_credential=True,
    )


async def _run(cfg: ProvisionConfig, apply: bool, revoke_broader: bool = False) -> Provisioner:
    settings = Settings(GRAPH_BASE_URL=cfg.graph_base_url, TENANT_ID=cfg.tenant_id)
    async with credential(cfg) as operator:
        caller = GraphCaller(graph_client(settings, operator))
        provisioner = Provisioner(caller, cfg, apply=apply, revoke_broader=revoke_broader)
        await provisioner.run()
        return provisioner


def _table(changes: list[Change], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("kind", "name", "action", "details"):
        table.add_column(column, overflow="fold")
    for change in changes:
        style = STYLE.get(change.action, "")
        table.add_row(change.kind, change.name, f"[{style}]{change.action}[/]", "\n".join(change.details))
    return table


def _execute(config: Path, apply: bool, revoke_broader: bool = False) -> Provisioner:
    try:
        cfg = load(config)
        return asyncio.run(_run(cfg, apply, revoke_broader))
    except ProvisionError as exc:
        console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(3) from None


@app.command()
def plan(config: Path = CONFIG, revoke_broader: bool = REVOKE_BROADER) -> None:
    """Show what apply would create or change (reads only)."""
    result = _execute(config, apply=False, revoke_broader=revoke_broader)
    console.print(_table(result.changes, "plan"))
    pending = sum(c.pending for c in result.changes)
    console.print(f"{pending} change(s) to apply." if pending else "Nothing to change.")


@app.command()
def apply(config: Path = CONFIG, revoke_broader: bool = REVOKE_BROADER) -> None:
    """Create or update everything provision.yaml describes; a second run changes nothing."""
    result = _execute(config, apply=True, revoke_broader=revoke_broader)
    console.print(_table(result.changes, "applied"))
    console.print(f"{sum(c.pending for c in result.changes)} change(s) applied.")
    for setting, key in (("MFA_RESET_PACKAGE_IDS", "mfaReset"), ("ONBOARDING_PACKAGE_IDS", "newHire")):
        if result.ids.get(key):
            console.print(f"App setting {setting}={result.ids[key]}")
    if result.ids.get("calloutApp"):
        audience = result.cfg.callout_app.identifier_uri
        console.print(f"App setting CALLOUT_AUDIENCE={audience} (app id {result.ids['calloutApp']})")
    if result.ids.get("easyAuth"):
        console.print(f"App setting EASY_AUTH_CLIENT_ID={result.ids['easyAuth']}")


@app.command()
def status(config: Path = CONFIG) -> None:
    """Report drift between provision.yaml and the tenant; exit code 1 when anything drifted."""
    result = _execute(config, apply=False)
    drifted = [c for c in result.changes if c.pending]
    warnings = [c for c in result.changes if c.action == WARN]
    if drifted or warnings:
        console.print(_table(drifted + warnings, "drift"))
    console.print(f"{len(drifted)} object(s) drifted." if drifted else "In sync.")
    if drifted:
        raise typer.Exit(1)
