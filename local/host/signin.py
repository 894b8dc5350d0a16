"""A local stand-in for App Service Authentication (Easy Auth) in front of the dev host.

Like Easy Auth, the dev host always strips X-MS-CLIENT-PRINCIPAL* headers arriving from outside, so a caller
cannot claim an identity by sending them. When the stand-in is on (DEVHOST_LOCAL_SIGNIN=true, or
DevHost(local_signin=True)):
- GET /.auth/login/local?user=<object id>&name=<display name>[&post_login_redirect_uri=/api/...] signs that
  fixture user in with a cookie (choose any user of the local tenant);
- GET /.auth/login/aad (where the product's 401 page links) shows a form that leads there;
- GET /.auth/logout clears it; GET /.auth/me shows the principal;
- requests under /api/ carry X-MS-CLIENT-PRINCIPAL-ID, -NAME, -IDP and the base64 X-MS-CLIENT-PRINCIPAL built
  from that cookie, as Easy Auth injects them.
Product code has no bypass: it trusts the headers only when EASY_AUTH_ENABLED says Easy Auth fronts it.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

COOKIE = "devhost_auth"
PREFIX = "x-ms-client-principal"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
NAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"


def principal_headers(user_id: str, name: str) -> dict[str, str]:
    """The headers Easy Auth injects for a signed-in Entra user."""
    principal = {
        "auth_typ": "aad",
        "name_typ": NAME,
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
        "claims": [{"typ": OID, "val": user_id}, {"typ": NAME, "val": name}, {"typ": "name", "val": name}],
    }
    return {
        "X-MS-CLIENT-PRINCIPAL-ID": user_id,
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(principal).encode()).decode(),
    }


def _read_cookie(request: web.Request) -> dict[str, Any] | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("id") else None


def middleware(enabled: Callable[[], bool]):
    @web.middleware
    async def easy_auth(request: web.Request, handler):
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if not k.lower().startswith(PREFIX))
        if enabled() and request.path.startswith("/api/"):
            signed_in = _read_cookie(request)
            if signed_in is not None:
                headers.update(principal_headers(signed_in["id"], signed_in.get("name") or signed_in["id"]))
        return await handler(request.clone(headers=headers))

    return easy_auth


def routes(enabled: Callable[[], bool]) -> list[web.RouteDef]:
    async def login(request: web.Request) -> web.Response:
        if not enabled():
            raise web.HTTPNotFound()
        user = request.query.get("user", "").strip()
        if not user:
            return web.Response(status=400, text="user=<object id> is required")
        name = request.query.get("name", "").strip() or user
        redirect = request.query.get("post_login_redirect_uri", "")
        if redirect and (not redirect.startswith("/") or redirect.startswith("//") or "\\" in redirect):
            return web.Response(status=400, text="post_login_redirect_uri must be a path on this host")
        response = web.HTTPFound(redirect) if redirect else web.Response(text=f"signed in as {name}")
        value = base64.urlsafe_b64encode(json.dumps({"id": user, "name": name}).encode()).decode()
        response.set_cookie(COOKIE, value, httponly=True, samesite="Lax", path="/")
        if redirect:
            raise response
        return response

    async def picker(request: web.Request) -> web.Response:
        """/.auth/login/aad (where product pages send people to sign in): a form to choose a local-tenant user."""
        if not enabled():
            raise web.HTTPNotFound()
        back = html.escape(request.query.get("post_login_redirect_uri", ""), quote=True)
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local sign-in</title></head><body>'
            "<h1>Local sign-in (dev host stand-in for App Service Authentication)</h1>"
            '<form method="get" action="/.auth/login/local">'
            '<p><label for="user">Object id of a local-tenant user</label><br><input id="user" name="user" required '
            'size="40"></p><p><label for="name">Display name</label><br><input id="name" name="name"></p>'
            f'<input type="hidden" name="post_login_redirect_uri" value="{back}">'
            "<p><button>Sign in</button></p></form></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    async def logout(request: web.Request) -> web.Response:
        response = web.Response(text="signed out")
        response.del_cookie(COOKIE, path="/")
        return response

    async def me(request: web.Request) -> web.Response:
        signed_in = _read_cookie(request) if enabled() else None
        return web.json_response([signed_in] if signed_in else [])

    return [
        web.get("/.auth/login/local", login),
        web.get("/.auth/login/aad", picker),
        web.get("/.auth/logout", logout),
        web.get("/.auth/me", me),
    ]
