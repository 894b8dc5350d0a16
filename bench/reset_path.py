"""The granted stage's critical path (dequeue → resume) with 100 ms injected on every Graph call, against a
sequential baseline that mirrors the Logic App this replaces (manager lookup, list methods, delete them one by
one, create a pass). Prints Graph round trips, wall times and their ratio.

    .venv/bin/python -m bench.reset_path [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import httpx

from bench.stack import azurite
from extensions import container as product_container
from extensions.payload import parse_callout
from extensions.settings import get_settings
from extensions.workflow import GRANTED, WorkItem
from local.host import DevHost
from local.tenant import TenantServer
from local.tenant.auth import app_token
from local.tenant.fixtures import make_default as F
from store.callouts import CalloutKey
from tests.stack import EMControl, product_settings, wait_until

PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"


def graph_requests(tenant: TenantServer) -> list[dict]:
    return [e for e in httpx.get(f"{tenant.url}/_control/requests").json() if e["path"].startswith(("/v1.0", "/beta"))]


def ours(storage, latency_ms: int) -> tuple[float, int, int]:
    """Wall time of the granted stage, Graph requests made, and wall/latency."""
    with TenantServer(port=0, https_port=0) as tenant:
        settings = product_settings(tenant, storage.connection_string)
        with DevHost(settings_file=None, settings=settings, port=0, run_queues=True) as host:
            get_settings.cache_clear()
            product_container.use_container(None)
            em = EMControl(tenant)
            em.point_extensions_at(f"{host.url}/api/callout")
            request_id = em.submit(F.U["megan"], F.U["tom"])
            em.wait_stage_status(request_id, "assignmentRequestCreated", {"callbackReceived"})
            wait_until(lambda: em.state(request_id)["request"]["state"] == "pendingApproval", "approval")
            host.stop_pollers()
            em.approve(request_id, F.U["megan"])
            em.approve(request_id, F.U["sam"])
            granted = em.wait_stage_status(request_id, "assignmentRequestGranted", {"waitingForCallback"})
            container = host.call(_container())
            item = WorkItem(request_id, GRANTED, granted["customExtensionStageInstanceId"])
            record = host.call(container.callouts.get(CalloutKey(request_id, GRANTED, item.stage_instance_id)))
            payload = parse_callout(json.loads(record["Body"]))
            if latency_ms:
                rule = [{"pattern": "^/(v1.0|beta)/", "fixedMs": latency_ms}]
                httpx.put(f"{tenant.url}/_control/latency", json=rule).raise_for_status()
            before = len(graph_requests(tenant))
            started = time.perf_counter()
            host.call(container.workflow.run(item, payload, True))
            wall = time.perf_counter() - started
            calls = len(graph_requests(tenant)) - before
            assert [m["@odata.type"] for m in tenant.state.users[F.U["tom"]]["methods"]] == [PASSWORD]
            host.call(container.close())
            product_container.use_container(None)
    return wall, calls, round(wall * 1000 / max(latency_ms, 1))


async def _container():
    return product_container.get_container()


def baseline(latency_ms: int) -> tuple[float, int]:
    """What the Logic App did, one call after another (it never verified, revoked or resumed)."""
    with TenantServer(port=0, https_port=0) as tenant:
        state = tenant.state
        token = app_token(state, state.applications[F.APP["func"][0]], "https://graph.microsoft.com")
        http = httpx.Client(base_url=tenant.graph_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        httpx.put(f"{tenant.url}/_control/latency", json=[{"pattern": "^/(v1.0|beta)/", "fixedMs": latency_ms}])
        user = F.U["tom"]
        calls = 0
        started = time.perf_counter()
        http.get(f"/users/{user}/manager").raise_for_status()
        methods = http.get(f"/users/{user}/authentication/methods").raise_for_status().json()["value"]
        calls += 2
        segments = {
            "phone": "phoneMethods",
            "microsoftAuthenticator": "microsoftAuthenticatorMethods",
            "fido2": "fido2Methods",
            "softwareOath": "softwareOathMethods",
            "email": "emailMethods",
            "windowsHelloForBusiness": "windowsHelloForBusinessMethods",
            "temporaryAccessPass": "temporaryAccessPassMethods",
            "platformCredential": "platformCredentialMethods",
        }
        for method in methods:
            kind = method["@odata.type"].removeprefix("#microsoft.graph.").removesuffix("AuthenticationMethod")
            if kind in segments:
                http.delete(f"/users/{user}/authentication/{segments[kind]}/{method['id']}")
                calls += 1
        http.post(f"/users/{user}/authentication/temporaryAccessPassMethods", json={}).raise_for_status()
        calls += 1
        return time.perf_counter() - started, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    latency, slow = args.latency_ms, 3 * args.latency_ms
    with azurite() as storage:
        ours(storage, latency)  # warm-up: first imports, Azurite tables
        wall0, _, _ = ours(storage, 0)
        wall, calls, _ = ours(storage, latency)
        wall_slow, _, _ = ours(storage, slow)
    base_wall, base_calls = baseline(latency)
    # Round trips on the critical path = how much the wall time grows per ms of added latency: the slope between
    # two latencies, so storage and CPU time (the same in both runs) drop out.
    sequential = (wall_slow - wall) * 1000 / (slow - latency)
    print(f"latency injected per Graph call: {latency} ms (and {slow} ms for the slope)")
    print(f"ours     (granted stage, dequeue → resume): {wall * 1000:7.0f} ms, {calls} Graph requests")
    print(f"ours at {slow} ms: {wall_slow * 1000:.0f} ms; without latency: {wall0 * 1000:.0f} ms (storage and CPU)")
    print(f"sequential Graph round trips = Δwall / Δlatency = {sequential:.1f}  (goal ≤ 4)")
    print(f"baseline (Logic App, one call at a time):   {base_wall * 1000:7.0f} ms, {base_calls} Graph requests")
    print(f"baseline / ours = {base_wall / wall:.2f}  (goal ≥ 3)")


if __name__ == "__main__":
    main()
