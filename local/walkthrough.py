"""`python -m local.walkthrough`: walk one sample MFA-reset request through every stage in the local tenant.

Megan Manager requests the "MFA reset" access package for her report Tom Target. The local tenant's EM engine
calls our callout function on the dev host at each stage; our worker checks the guardrails and resumes the
request; the two approvers approve; on grant the worker revokes Tom's sessions, deletes his methods, opens a
pickup for Megan and resumes. Every step is printed as it happens.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from local.tenant.fixtures.make_default import U, build

console = Console()
PACKAGE = build()["entitlementManagement"]["accessPackages"][0]


def fail(message: str) -> None:
    console.print(f"[red]walkthrough failed:[/] {message}")
    sys.exit(1)


def wait_for(predicate, what: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    fail(f"timed out after {seconds:.0f} s waiting for {what}")
    return None


class Walk:
    def __init__(self, tenant: str, host: str):
        self.tenant = httpx.Client(base_url=tenant, timeout=10)
        self.host = httpx.Client(base_url=host, timeout=10)
        self.host_url = host

    def state(self, request_id: str) -> dict[str, Any]:
        return self.tenant.get(f"/_control/em/requests/{request_id}").raise_for_status().json()

    def callout(self, request_id: str, stage: str, statuses: set[str]) -> dict[str, Any]:
        def reached():
            found = [c for c in self.state(request_id)["callouts"] if c["stage"] == stage and c["status"] in statuses]
            return found[-1] if found else None

        return wait_for(reached, f"the {stage} callout to reach {' or '.join(sorted(statuses))}")

    def methods(self, user_id: str) -> list[str]:
        user = self.tenant.get(f"/_control/state/users/{user_id}").raise_for_status().json()
        return [
            m["@odata.type"].removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
            for m in user["methods"]
        ]

    def run(self) -> None:
        health = self.host.get("/api/health")
        if health.status_code != 200:
            fail(f"GET /api/health answered {health.status_code}")
        callout_url = f"{self.host_url}/api/callout"
        self.tenant.post("/_control/em/extensions/url", json={"url": callout_url}).raise_for_status()
        console.print(f"custom extensions call [bold]{callout_url}[/]")
        console.print(f"Tom Target's methods before: {', '.join(self.methods(U['tom']))}")

        submitted = self.tenant.post(
            "/_control/em/requests",
            json={
                "requestorId": U["megan"],
                "targetId": U["tom"],
                "accessPackageId": PACKAGE["id"],
                "justification": "Lost phone; verified Tom on a video call",
            },
        )
        if submitted.status_code != 201:
            fail(f"submitting the request answered {submitted.status_code}: {submitted.text}")
        request_id = submitted.json()["id"]
        console.print(f"1. Megan Manager requested [bold]{PACKAGE['displayName']}[/] for Tom Target ({request_id})")

        created = self.callout(request_id, "assignmentRequestCreated", {"waitingForCallback", "callbackReceived"})
        console.print(f"2. EM called our function (HTTP {created['lastHttpStatus']}): [green]{created['status']}[/]")
        created = self.callout(request_id, "assignmentRequestCreated", {"callbackReceived"})
        console.print(f"3. Our worker checked the guardrails and resumed: “{created['detail']}”")
        wait_for(lambda: self.state(request_id)["request"]["state"] == "pendingApproval", "pending approval")
        for approver, who in ((U["megan"], "Megan Manager (stage 1)"), (U["sam"], "Sam Security (stage 2)")):
            self.tenant.post(
                f"/_control/em/requests/{request_id}/approve", json={"approverId": approver}
            ).raise_for_status()
            console.print(f"4. Approved by {who}")
        granted = self.callout(request_id, "assignmentRequestGranted", {"callbackReceived", "callbackTimedOut"})
        console.print(f"5. Access granted; our worker reset Tom and resumed: “{granted['detail']}”")

        final = self.state(request_id)
        table = Table(title="The sample request in the local tenant")
        table.add_column("stage")
        table.add_column("callout status in EM")
        table.add_column("our detail")
        for call in final["callouts"]:
            table.add_row(call["stage"], call["status"], call.get("detail") or "")
        console.print(table)
        console.print(
            f"request state: [bold]{final['request']['state']}[/]; "
            f"Tom Target's methods after: {', '.join(self.methods(U['tom']))}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.walkthrough", description=__doc__)
    parser.add_argument("--tenant", default="http://127.0.0.1:8900")
    parser.add_argument("--host", default="http://127.0.0.1:7071")
    args = parser.parse_args()
    Walk(args.tenant, args.host).run()


if __name__ == "__main__":
    main()
