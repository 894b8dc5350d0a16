"""`python -m local.walkthrough`: submit one sample MFA-reset request to the local tenant and follow it.

A manager (Megan) requests the "MFA reset" access package for her report (Tom). The local tenant's EM engine
calls our callout function on the dev host; we show the callout arriving, recorded in storage, and the
tenant holding the request at waitingForCallback (the stage playbooks resume it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from local.tenant.fixtures.make_default import U

ROOT = Path(__file__).resolve().parent.parent
console = Console()


def fail(message: str) -> None:
    console.print(f"[red]walkthrough failed:[/] {message}")
    sys.exit(1)


def wait_for(predicate, what: str, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    fail(f"timed out after {seconds:.0f} s waiting for {what}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.walkthrough", description=__doc__)
    parser.add_argument("--tenant", default="http://127.0.0.1:8900")
    parser.add_argument("--host", default="http://127.0.0.1:7071")
    args = parser.parse_args()
    tenant = httpx.Client(base_url=args.tenant, timeout=10)
    host = httpx.Client(base_url=args.host, timeout=10)

    health = host.get("/api/health")
    if health.status_code != 200:
        fail(f"GET /api/health answered {health.status_code}")
    console.print(f"dev host healthy: {health.json()}")

    callout_url = f"{args.host}/api/callout"
    tenant.post("/_control/em/extensions/url", json={"url": callout_url}).raise_for_status()
    console.print(f"custom extensions now call [bold]{callout_url}[/]")

    package = json.loads((ROOT / "local/tenant/fixtures/default.json").read_text())["entitlementManagement"][
        "accessPackages"
    ][0]
    submitted = tenant.post(
        "/_control/em/requests",
        json={
            "requestorId": U["megan"],
            "targetId": U["tom"],
            "accessPackageId": package["id"],
            "justification": "Lost phone; verified Tom on a video call",
        },
    )
    if submitted.status_code != 201:
        fail(f"submitting the request answered {submitted.status_code}: {submitted.text}")
    request_id = submitted.json()["id"]
    console.print(f"Megan Manager requested [bold]{package['displayName']}[/] for Tom Target: request {request_id}")

    def waiting():
        state = tenant.get(f"/_control/em/requests/{request_id}").json()
        callouts = [c for c in state.get("callouts", []) if c.get("status") == "waitingForCallback"]
        return (state, callouts[0]) if callouts else None

    state, callout = wait_for(waiting, "the assignmentRequestCreated callout to be accepted")
    table = Table(title="Sample request in the local tenant")
    table.add_column("what")
    table.add_column("value")
    table.add_row("request id", request_id)
    table.add_row("request state", str(state["request"].get("state")))
    table.add_row("callout stage", str(callout.get("stage")))
    table.add_row("stage instance id", str(callout.get("customExtensionStageInstanceId")))
    table.add_row("callout HTTP status from our function", str(callout.get("lastHttpStatus")))
    table.add_row("callout status in EM", f"[bold green]{callout.get('status')}[/]")
    console.print(table)
    console.print("The callout function recorded the callout and queued it; EM now waits for our resume.")


if __name__ == "__main__":
    main()
