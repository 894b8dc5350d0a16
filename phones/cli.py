"""`python -m phones sync [--dry-run] [--group G] [--users FILE] [--mode add|authoritative]`

Runs one phone prepopulation with the app's settings (environment, then local.settings.json's Values for names
the environment lacks) and the managed identity (locally: the local tenant's). Shows a progress bar, the
`Status:` lines of every write, invalid number and failure (of every user in a dry run), a summary table, the
`Stats:` line and the JSON summary. Exit code 1 when any user failed.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from extensions.settings import Settings
from graph.client import graph_client
from graph.raw import GraphCaller
from store.clients import table_service
from store.tables import Tables

from .plan import ACTIONS, Step
from .service import run_phone_sync
from .sync import Summary, status_line

app = typer.Typer(add_completion=False, help="Bulk MFA phone prepopulation.")
console = Console()
LOUD = {"add", "update", "delete", "invalid", "failed"}


@app.callback()
def main() -> None:
    """Bulk MFA phone prepopulation (the successor of the MFA pre-populate runbook)."""


def load_settings(path: Path | None) -> Settings:
    candidate = path or Path("local.settings.json")
    if candidate.exists():
        values = json.loads(candidate.read_text()).get("Values", {})
        for name, value in values.items():
            os.environ.setdefault(name, str(value))
    elif path is not None:
        raise typer.BadParameter(f"{path} does not exist")
    return Settings()


def read_users(path: Path) -> list[str]:
    """A JSON list, or one id/UPN per line (blank lines and # comments ignored)."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        return [str(u).strip() for u in json.loads(text) if str(u).strip()]
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"Phone sync {summary.run_id} ({summary.mode}{', dry run' if summary.dry_run else ''})")
    table.add_column("outcome")
    table.add_column("users", justify="right")
    for action in ACTIONS:
        table.add_row(action, str(summary.counts.get(action, 0)))
    table.add_row("total", str(summary.users), style="bold")
    if summary.resumed_done:
        table.add_row("(finished by an earlier attempt)", str(summary.resumed_done))
    if summary.missing:
        table.add_row("not found / not eligible", str(len(summary.missing)))
    return table


@app.command()
def sync(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan, write nothing")] = False,
    group: Annotated[
        str | None, typer.Option("--group", help="staging group object id (overrides the setting)")
    ] = None,
    users: Annotated[Path | None, typer.Option("--users", help="file: JSON list or one id/UPN per line")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="add or authoritative (default: PHONE_SYNC_MODE)")] = None,
    settings_file: Annotated[Path | None, typer.Option("--settings", help="local.settings.json to read")] = None,
) -> None:
    if mode is not None and mode not in ("add", "authoritative"):
        raise typer.BadParameter("--mode must be add or authoritative")
    settings = load_settings(settings_file)
    listed = read_users(users) if users else None
    summary = asyncio.run(_run(settings, listed, group, mode, dry_run))
    console.print(summary_table(summary))
    console.print(summary.stats_line(), markup=False, highlight=False)
    console.print("Summary: " + json.dumps(summary.as_json()), markup=False, highlight=False)
    if summary.counts.get("failed"):
        raise typer.Exit(1)


async def _run(settings: Settings, users: list[str] | None, group: str | None, mode: str | None, dry: bool):
    graph = GraphCaller(graph_client(settings))
    tables = Tables(table_service(settings), settings.table_prefix)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("selecting users", total=None)

            def selected(count: int) -> None:
                progress.update(task, total=count, description="phones")

            def step(s: Step) -> None:
                progress.advance(task)
                if dry or s.action in LOUD:
                    progress.console.print(status_line(s, dry), markup=False, highlight=False)

            return await run_phone_sync(
                settings, graph, tables, kind="cli", users=users, group=group, mode=mode, dry_run=dry,
                on_step=step, on_selected=selected,
            )  # fmt: skip
    finally:
        await tables.close()
