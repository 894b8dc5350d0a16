"""`python -m local.walkthrough`: walk one sample MFA-reset request through every stage in the local tenant.

Megan Manager requests the "MFA reset" access package for her report Tom Target. The local tenant's EM engine
calls our callout function on the dev host at each stage; our worker checks the guardrails and resumes the
request; the two approvers approve; on grant the worker revokes Tom's sessions, deletes his methods, opens a
pickup for Megan and resumes. Then:
- the notifications: what the tenant's ACS email sink, Bot Connector and channel-webhook sink received;
- the pickup: Megan signs in through the dev host's sign-in stand-in (/.auth/login/local), opens the pickup link
  from her notification and presses Reveal with the page's nonce. The walkthrough says only that the pass was
  shown and until when: the pass itself is never printed, logged or kept. A reload shows who revealed it when;
- completion: Tom registers a passkey (tenant control API), the sweep timer runs (dev host admin API), deletes
  the pass and asks EM to remove the assignment (adminRemove); EM takes Tom out of the onboarding group and
  calls our function for the removed stage, which our worker handles.
Every step is printed as it happens. Only HTTP to the running tenant (control API; Graph reads with the managed
identity the dev host uses) and dev host (routes, sign-in stand-in, admin API).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from extensions import pickup_strings as S
from local.tenant.fixtures.make_default import U, build

console = Console()
FIXTURE = build()
PACKAGE = FIXTURE["entitlementManagement"]["accessPackages"][0]
ONBOARDING_GROUP = PACKAGE["resourceGroupId"]
SETTINGS_FILE = Path(__file__).resolve().parent.parent / "local.settings.json"
REMOVED = "assignmentRequestRemoved"
TAP = "temporaryAccessPass"
EMAIL, BOT, CHANNEL = "email (ACS)", "Teams (bot)", "Teams channel (webhook)"

# The pickup page, read with the page's own wording (extensions/pickup_strings.py); the pass is only detected.
NONCE = re.compile(r'name="nonce" value="([^"]+)"')
HEADING = re.compile(r"<h1>([^<]*)</h1>")
PASS_SHOWN = re.compile(r'<output id="pass"[^>]*>[^<]+</output>')
PICKUP_LINK = re.compile(r"https?://[^\s\"'<>]+/pickup/([A-Za-z0-9_-]+)")


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


def settled(read: Callable[[], Any], seconds: float = 10.0, quiet: float = 1.0) -> Any:
    """`read()` once it has not changed for `quiet` seconds (or after `seconds`): messages still in flight land."""
    deadline = time.monotonic() + seconds
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            break
        last = now
    return last


def local_setting(name: str, default: str) -> str:
    """An app setting as the dev host sees it: the environment, else local.settings.json, else `default`."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        values = json.loads(SETTINGS_FILE.read_text()).get("Values") or {}
    except (OSError, ValueError):
        values = {}
    return str(values.get(name) or default)


def field(page: str, label: str) -> str:
    """The value of `<dt>label</dt><dd>value</dd>` on a pickup page."""
    found = re.search(rf"<dt>{re.escape(html.escape(label))}</dt><dd>([^<]*)</dd>", page)
    return html.unescape(found.group(1)) if found else "?"


def heading(page: str) -> str:
    found = HEADING.search(page)
    return html.unescape(found.group(1)) if found else "(no heading)"


def method_label(method: dict[str, Any]) -> str:
    kind = method["@odata.type"].removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
    return f"{kind} ({method['displayName']})" if kind == "fido2" and method.get("displayName") else kind


class Walk:
    def __init__(self, tenant: str, host: str, function_key: str, identity_header: str):
        self.tenant = httpx.Client(base_url=tenant, timeout=10)
        self.host = httpx.Client(base_url=host, timeout=30)
        self.host_url = host
        self.function_key = function_key
        self.identity_header = identity_header
        self._graph_token: str | None = None
        self.seen: dict[str, int] = {}  # notifications per transport up to the pickup link

    # --- the local tenant -------------------------------------------------------------------------------------
    def state(self, request_id: str) -> dict[str, Any]:
        return self.tenant.get(f"/_control/em/requests/{request_id}").raise_for_status().json()

    def callout(self, request_id: str, stage: str, statuses: set[str], seconds: float = 30.0) -> dict[str, Any]:
        def reached():
            found = [c for c in self.state(request_id)["callouts"] if c["stage"] == stage and c["status"] in statuses]
            return found[-1] if found else None

        return wait_for(reached, f"the {stage} callout to reach {' or '.join(sorted(statuses))}", seconds)

    def user_methods(self, user_id: str) -> list[dict[str, Any]]:
        return self.tenant.get(f"/_control/state/users/{user_id}").raise_for_status().json()["methods"]

    def methods(self, user_id: str) -> list[str]:
        return [method_label(m) for m in self.user_methods(user_id)]

    def graph(self, path: str, **params: str) -> dict[str, Any]:
        """A Graph read in the local tenant with the managed identity the dev host uses (IDENTITY_HEADER)."""
        if self._graph_token is None:
            answer = self.tenant.get(
                "/msi/token",
                params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
                headers={"X-IDENTITY-HEADER": self.identity_header},
            )
            if answer.status_code != 200:
                fail(f"the tenant's managed-identity endpoint answered {answer.status_code} (IDENTITY_HEADER?)")
            self._graph_token = answer.json()["access_token"]
        response = self.tenant.get(
            f"/v1.0{path}", params=params, headers={"Authorization": f"Bearer {self._graph_token}"}
        )
        if response.status_code != 200:
            fail(f"GET /v1.0{path} answered {response.status_code}")
        return response.json()

    def onboarding_group(self, user_id: str) -> str | None:
        """The onboarding group's name when the user is a direct member, else None."""
        groups = self.graph(f"/users/{user_id}/memberOf", **{"$select": "id,displayName"})["value"]
        return next((g["displayName"] for g in groups if g["id"] == ONBOARDING_GROUP), None)

    def notifications(self) -> dict[str, list[tuple[str, str]]]:
        """Every message the tenant's sinks received: transport → [(recipient, subject or card title)]."""
        mails = self.tenant.get("/_control/acs/messages").raise_for_status().json()
        activities = self.tenant.get("/_control/bot/activities").raise_for_status().json()
        cards = self.tenant.get("/_control/webhooks/reset-channel").raise_for_status().json()

        def card_title(post: dict[str, Any]) -> str:
            try:
                return post["attachments"][0]["content"]["body"][0]["text"]
            except (KeyError, IndexError, TypeError):
                return "(card without a title)"

        return {
            EMAIL: [(", ".join(m["to"]), m["subject"]) for m in mails],
            BOT: [(a.get("recipientName") or a["recipient"], a.get("summary") or "") for a in activities],
            CHANNEL: [("reset channel", card_title(p)) for p in cards],
        }

    def pickup_link(self, before: dict[str, int]) -> str | None:
        """The pickup link as Megan got it since `before`: her mail's text, else her Teams card's button."""
        mail = self.tenant.get(f"/_control/state/users/{U['megan']}").raise_for_status().json()["mail"]
        mails = self.tenant.get("/_control/acs/messages").raise_for_status().json()[before[EMAIL] :]
        activities = self.tenant.get("/_control/bot/activities").raise_for_status().json()[before[BOT] :]
        texts = [m.get("plainText") or "" for m in mails if mail in m["to"]]
        texts += [json.dumps(a["attachments"]) for a in activities if a["recipient"] == U["megan"]]
        for text in reversed(texts):
            found = PICKUP_LINK.search(text)
            if found:
                return found.group(0)
        return None

    def requests_since(self, since: datetime, *, writes: bool = False, contains: str = "") -> list[dict[str, Any]]:
        """The tenant's request log (method, path, status, app; never bodies) from `since` on."""
        params = {"contains": contains} if contains else {}
        entries = self.tenant.get("/_control/requests", params=params).raise_for_status().json()
        found = [e for e in entries if datetime.fromisoformat(e["time"]) >= since]
        return [e for e in found if e["method"] in ("POST", "PATCH", "DELETE", "PUT")] if writes else found

    def worker_took(self, since: datetime, removal_id: str) -> bool:
        """Our worker read the removal request in Graph, then Tom's methods (the passes left to delete)."""
        entries = self.requests_since(since)
        read = next((i for i, e in enumerate(entries) if e["method"] == "GET" and removal_id in e["path"]), None)
        methods = f"/users/{U['tom']}/authentication/methods"
        return read is not None and any(e["path"].endswith(methods) for e in entries[read:])

    def clock(self) -> datetime:
        return datetime.fromisoformat(self.tenant.get("/_control/clock").raise_for_status().json()["now"])

    # --- printing ----------------------------------------------------------------------------------------------
    def print_notifications(self, title: str, seen: dict[str, int]) -> dict[str, int]:
        """Messages received since `seen` (counts per transport), per transport and recipient; the new counts."""
        current = settled(self.notifications)
        table = Table(title=title)
        table.add_column("transport")
        table.add_column("recipient")
        table.add_column("#", justify="right")
        table.add_column("subjects / card titles")
        for transport, messages in current.items():
            by_recipient: dict[str, list[str]] = {}
            for recipient, subject in messages[seen.get(transport, 0) :]:
                by_recipient.setdefault(recipient, []).append(subject)
            if not by_recipient:
                table.add_row(transport, "—", "0", "")
            for recipient, subjects in by_recipient.items():
                table.add_row(transport, recipient, str(len(subjects)), "\n".join(subjects))
        console.print(table)
        return {transport: len(messages) for transport, messages in current.items()}

    # --- the walk ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        health = self.host.get("/api/health")
        if health.status_code != 200:
            fail(f"GET /api/health answered {health.status_code}")
        callout_url = f"{self.host_url}/api/callout"
        self.tenant.post("/_control/em/extensions/url", json={"url": callout_url}).raise_for_status()
        console.print(f"custom extensions call [bold]{callout_url}[/]")
        console.print(f"Tom Target's methods before: {', '.join(self.methods(U['tom']))}")
        before = {transport: len(messages) for transport, messages in self.notifications().items()}

        request_id = self.submit_and_grant()
        pickup_link = self.notified(before)
        self.pickup(pickup_link)
        self.complete(request_id)

    def submit_and_grant(self) -> str:
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
        if granted["status"] != "callbackReceived":
            fail(f"the granted stage ended {granted['status']}: {granted.get('detail')}")
        console.print(f"5. Access granted; our worker reset Tom and resumed: “{granted['detail']}”")
        console.print(
            f"   Tom Target's methods now: {', '.join(self.methods(U['tom']))}; EM put him in the onboarding group "
            f"“{self.onboarding_group(U['tom']) or '(not a member!)'}”"
        )
        return request_id

    def notified(self, before: dict[str, int]) -> str:
        link = wait_for(lambda: self.pickup_link(before), "Megan's notification with the pickup link (email or Teams)")
        self.seen = self.print_notifications("6. Notifications for this request so far", before)
        console.print(f"6. Megan's notification holds the pickup link {link}")
        return link

    def pickup(self, link: str) -> None:
        pickup_id = PICKUP_LINK.search(link).group(1)
        path = f"/api/pickup/{pickup_id}"  # the link's path on the dev host (PICKUP_BASE_URL may name another host)
        megan = httpx.Client(base_url=self.host_url, timeout=30)
        signed = megan.get("/.auth/login/local", params={"user": U["megan"], "name": "Megan Manager"})
        if signed.status_code != 200:
            fail(f"the dev host's sign-in stand-in answered {signed.status_code} (is DEVHOST_LOCAL_SIGNIN true?)")
        me = megan.get("/.auth/me").json()
        who = me[0]["name"] if me else "nobody"
        console.print(f"7. Megan Manager signed in through the dev host's sign-in stand-in (/.auth/me: {who})")

        page = megan.get(path)
        if page.status_code != 200:
            fail(f"GET {path} answered {page.status_code}: “{heading(page.text)}” (is EASY_AUTH_ENABLED true?)")
        nonce = NONCE.search(page.text)
        if not nonce:
            fail(f"the pickup page has no Reveal form: “{heading(page.text)}”")
        console.print(
            f"7. She opened the pickup page: “{heading(page.text)}”; "
            f"{S.PICKUP_EXPIRES.lower()} {field(page.text, S.PICKUP_EXPIRES)}"
        )

        # The answer holds the pass: only whether it was shown and its dates leave this block, never the page.
        shown = megan.post(f"{path}/reveal", data={"nonce": nonce.group(1)})
        if shown.status_code != 200 or not PASS_SHOWN.search(shown.text):
            fail(f"the reveal answered {shown.status_code}: “{heading(shown.text)}”")
        expires = field(shown.text, S.PASS_EXPIRES)
        starts = field(shown.text, S.PASS_STARTS)
        use = "one sign-in only" if S.PASS_USE_ONCE in shown.text else "several sign-ins until it expires"
        cache = shown.headers.get("cache-control", "")
        del shown
        console.print(
            f"7. She pressed Reveal (with the page's nonce): a Temporary Access Pass was shown once on the page "
            f"(not printed here; Cache-Control: {cache}); valid from {starts}, expires at {expires}, {use}"
        )

        again = megan.get(path)
        if again.status_code != 200 or PASS_SHOWN.search(again.text):
            fail(f"the reload answered {again.status_code}: “{heading(again.text)}”")
        pattern = re.escape(html.escape(S.REVEALED_BODY.split(". ")[0] + "."))  # "Revealed at {at} by {by}."
        pattern = pattern.replace(re.escape("{at}"), "(?P<at>[^<]+?)").replace(re.escape("{by}"), "(?P<by>[^<]+?)")
        revealed = re.search(pattern, again.text)
        if not revealed:
            fail(f"the reload does not say who revealed the pass: “{heading(again.text)}”")
        console.print(
            f"7. She reloaded the page: “{heading(again.text)}”: revealed at {html.unescape(revealed['at'])} "
            f"by {html.unescape(revealed['by'])} (the pass is not shown again)"
        )

    def complete(self, request_id: str) -> None:
        assignment_id = self.state(request_id)["assignment"]["id"]
        passkey = self.tenant.post(f"/_control/users/{U['tom']}/passkey", json={"kind": "authenticator"})
        if passkey.status_code != 201:
            fail(f"registering Tom's passkey answered {passkey.status_code}: {passkey.text}")
        registered = passkey.json()
        console.print(
            f"8. Tom Target signed in with the pass and registered a passkey: {registered['displayName']} "
            f"(fido2, {registered['createdDateTime']})"
        )

        since = self.clock()
        sweep = self.host.post(
            "/admin/functions/sweep_timer", json={"input": ""}, headers={"x-functions-key": self.function_key}
        )
        if sweep.status_code == 401:
            fail("the dev host refused its admin API (401): pass its function key with --function-key")
        if sweep.status_code != 202:
            fail(f"running sweep_timer answered {sweep.status_code}: {sweep.text}")
        console.print("8. The sweep timer ran (POST /admin/functions/sweep_timer → 202); its writes in the tenant:")
        for entry in self.requests_since(since, writes=True):
            if entry["path"].startswith(("/v1.0/", "/beta/")):  # Graph; the notifications are shown below
                console.print(f"   {entry['method']} {entry['path']} → {entry.get('status')}")
        left = [m for m in self.user_methods(U["tom"]) if TAP in m["@odata.type"]]
        if left:
            fail("the sweep left Tom's pass in place")
        console.print(f"8. The pass is deleted: Tom Target's methods are {', '.join(self.methods(U['tom']))}")

        def removal_callout() -> dict[str, Any] | None:
            sent = self.tenant.get("/_control/em/callouts").raise_for_status().json()
            found = [
                c
                for c in sent
                if c["stage"] == REMOVED and (c.get("body") or {}).get("Assignment", {}).get("Id") == assignment_id
            ]
            return found[-1] if found else None

        first = wait_for(removal_callout, "EM's removed-stage callout for the assignment")
        removal_id = first["body"]["AccessPackageAssignmentRequestId"]
        removal = self.state(removal_id)
        console.print(
            f"8. EM's {removal['request']['requestType']} request {removal_id} is {removal['request']['state']}: "
            f"the assignment is {removal['assignment']['state']} and Tom is "
            f"{'still in' if self.onboarding_group(U['tom']) else 'out of'} the onboarding group"
        )
        call = self.callout(removal_id, REMOVED, {"calloutSent", "waitingForCallback", "callbackReceived"})
        status = call["lastHttpStatus"]
        console.print(f"8. EM called our function for the removed stage (HTTP {status}): {call['status']}")
        if call["status"] in ("waitingForCallback", "callbackReceived"):
            call = self.callout(removal_id, REMOVED, {"callbackReceived"})
            console.print(f"8. Our worker handled the removed stage and resumed: “{call['detail']}”")
        else:  # launch and continue: nothing to resume; the worker's Graph reads show it took the stage
            wait_for(lambda: self.worker_took(since, removal_id), "our worker to take the removed stage")
            console.print(
                "8. Our worker handled the removed stage (EM does not wait at this stage, so there is nothing to "
                "resume): it read the removal request in Graph and checked Tom for passes left"
            )
        self.print_notifications("8. Notifications since the pickup link", self.seen)
        self.summary(request_id, removal_id)

    def summary(self, request_id: str, removal_id: str) -> None:
        final, removal = self.state(request_id), self.state(removal_id)
        table = Table(title="The sample request in the local tenant")
        table.add_column("request")
        table.add_column("stage", no_wrap=True)
        table.add_column("callout status in EM")
        table.add_column("our detail")
        for label, state in ((final["request"]["requestType"], final), (removal["request"]["requestType"], removal)):
            for call in state["callouts"]:
                table.add_row(label, call["stage"], call["status"], call.get("detail") or "")
        console.print(table)
        group = self.onboarding_group(U["tom"])
        console.print(
            f"request state: [bold]{final['request']['state']}[/]; {removal['request']['requestType']} request: "
            f"[bold]{removal['request']['state']}[/]; assignment: [bold]{final['assignment']['state']}[/]"
        )
        console.print(
            f"Tom Target's methods after: {', '.join(self.methods(U['tom']))}; onboarding group: "
            f"{'still a member' if group else 'not a member'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.walkthrough", description=__doc__)
    parser.add_argument("--tenant", default="http://127.0.0.1:8900")
    parser.add_argument("--host", default="http://127.0.0.1:7071")
    parser.add_argument(
        "--function-key",
        default=local_setting("DEVHOST_FUNCTION_KEY", "local-function-key"),
        help="the dev host's function key, for running the sweep timer through its admin API",
    )
    parser.add_argument(
        "--identity-header",
        default=local_setting("IDENTITY_HEADER", "local-identity-header"),
        help="the tenant's IDENTITY_HEADER, for Graph reads with the managed identity",
    )
    args = parser.parse_args()
    Walk(args.tenant, args.host, args.function_key, args.identity_header).run()


if __name__ == "__main__":
    main()
