"""The dev host's Easy Auth stand-in: outside principal headers are always stripped; when it is on, a local
sign-in cookie becomes the X-MS-CLIENT-PRINCIPAL* headers Easy Auth would inject."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import httpx
import pytest

from local.host import DevHost

app = func.FunctionApp()


@app.route(route="whoami", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def whoami(req: func.HttpRequest) -> func.HttpResponse:
    seen = {k.lower(): v for k, v in req.headers.items() if k.lower().startswith("x-ms-client-principal")}
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[DevHost]:
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))
    with DevHost(app=app, settings_file=None, host_json=tmp_path / "host.json", port=0, local_signin=False) as running:
        yield running


SPOOF = {
    "X-MS-CLIENT-PRINCIPAL-ID": "someone",
    "X-MS-CLIENT-PRINCIPAL-NAME": "Someone",
    "X-MS-CLIENT-PRINCIPAL": "e30=",
}


def test_principal_headers_from_outside_are_stripped_and_sign_in_is_off_by_default(host: DevHost):
    with httpx.Client(base_url=host.url) as client:
        assert client.get("/api/whoami", headers=SPOOF).json() == {}
        assert client.get("/.auth/login/local", params={"user": "u1"}).status_code == 404


def test_a_local_sign_in_becomes_easy_auth_headers_and_cannot_be_overridden(host: DevHost):
    host.local_signin = True
    with httpx.Client(base_url=host.url) as client:
        assert client.get("/api/whoami").json() == {}
        signed = client.get("/.auth/login/local", params={"user": "u1", "name": "Una User"})
        assert signed.status_code == 200
        seen = client.get("/api/whoami", headers=SPOOF).json()
        assert seen["x-ms-client-principal-id"] == "u1"
        assert seen["x-ms-client-principal-name"] == "Una User"
        claims = json.loads(base64.b64decode(seen["x-ms-client-principal"]))["claims"]
        assert {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "u1"} in claims
        assert client.get("/.auth/me").json() == [{"id": "u1", "name": "Una User"}]
        client.get("/.auth/logout")
        assert client.get("/api/whoami").json() == {}


def test_the_login_redirect_stays_on_this_host(host: DevHost):
    host.local_signin = True
    with httpx.Client(base_url=host.url) as client:
        for elsewhere in ("https://evil.example", "//evil.example/x", "/\\evil.example"):
            outside = client.get("/.auth/login/local", params={"user": "u1", "post_login_redirect_uri": elsewhere})
            assert outside.status_code == 400, elsewhere
        inside = client.get("/.auth/login/local", params={"user": "u1", "post_login_redirect_uri": "/api/whoami"})
        assert inside.status_code == 302
        assert inside.headers["location"] == "/api/whoami"


def test_the_aad_login_path_offers_a_local_user_form_that_leads_back(host: DevHost):
    with httpx.Client(base_url=host.url) as client:
        assert client.get("/.auth/login/aad").status_code == 404
        host.local_signin = True
        form = client.get("/.auth/login/aad", params={"post_login_redirect_uri": '/api/x"><script>'})
        assert form.status_code == 200
        assert 'action="/.auth/login/local"' in form.text
        assert 'value="/api/x&quot;&gt;&lt;script&gt;"' in form.text
