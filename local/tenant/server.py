"""Assembles the local tenant's aiohttp application and runs it on HTTP and HTTPS, in-process or standalone.

HTTP serves Graph, EM, MSI, OIDC and the control API (msgraph-sdk and azure-identity accept plain http on
loopback). HTTPS serves the same routes for azure-core clients (ACS Email) that refuse bearer tokens over
plain http; its certificate comes from a throwaway local CA (trustme) whose PEM is written to `ca_path`.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

from ..threaded import ThreadedServer
from . import (
    acs,
    auth,
    bot,
    bot_channel,
    control,
    em,
    graph_apps,
    graph_batch,
    graph_directory,
    graph_governance,
    graph_methods,
    graph_packages,
    graph_policies,
    graph_registrations,
    throttle,
    webhook,
)
from .appkeys import CONFIG, STATE, URLS
from .errors import GraphError, graph_error
from .state import TenantState

ROUTE_MODULES = (auth, control, throttle, graph_directory, graph_methods, graph_batch, em, acs, bot)
ROUTE_MODULES += (webhook,)  # the Teams Workflows webhook sink
ROUTE_MODULES += (bot_channel,)  # the Bot Connector's keys and activities delivered to a bot's messaging endpoint
# operator setup (provision/)
ROUTE_MODULES += (graph_governance, graph_packages, graph_policies, graph_apps, graph_registrations)


@dataclass
class TenantConfig:
    """Run-time knobs of the local tenant (the fixture holds the directory itself)."""

    host: str = "127.0.0.1"
    port: int = 8900
    https_port: int = 8901
    identity_header: str = "local-identity-header"
    # The identity ManagedIdentityCredential gets when it names none: the function app's own.
    managed_identity_client_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@web.middleware
async def graph_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except GraphError as exc:
        return graph_error(exc.status, exc.code, exc.message, request, exc.headers)


def build_app(state: TenantState, config: TenantConfig) -> web.Application:
    if not config.managed_identity_client_id:
        config.managed_identity_client_id = state.tenant.get("functionAppIdentity", "")
    middlewares = [graph_errors, *getattr(throttle, "MIDDLEWARES", ())]
    app = web.Application(middlewares=middlewares, client_max_size=8 * 1024 * 1024)
    app[STATE] = state
    app[CONFIG] = config
    app[URLS] = {}
    for module in ROUTE_MODULES:
        module.setup(app)
    return app


_CA: trustme.CA | None = None


def local_ca() -> trustme.CA:
    """One throwaway CA per process; its certificate for 127.0.0.1 and localhost serves HTTPS."""
    global _CA
    if _CA is None:
        _CA = trustme.CA(organization_name="MFA Reset Extension local tenant")
    return _CA


class TenantServer(ThreadedServer):
    """The local tenant on its own thread and event loop, so blocking clients (EmailClient) can call it.

    Use as a context manager: `with TenantServer(fixture=path, port=0) as tenant: tenant.url ...`.
    Port 0 picks free ports.
    """

    thread_name = "local-tenant"

    def __init__(
        self,
        fixture: Path | str | None = None,
        *,
        state: TenantState | None = None,
        config: TenantConfig | None = None,
        port: int | None = None,
        https_port: int | None = None,
    ):
        self.state = state or TenantState.from_fixture(fixture)
        self.config = config or TenantConfig()
        if port is not None:
            self.config.port = port
        if https_port is not None:
            self.config.https_port = https_port
        super().__init__()
        self.app = build_app(self.state, self.config)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.https_port = 0
        ca_dir = Path(tempfile.mkdtemp(prefix="local-tenant-ca-"))
        self.ca_path = ca_dir / "ca.pem"
        local_ca().cert_pem.write_to_path(str(self.ca_path))

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://{self.config.host}:{self.https_port}"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    def env(self) -> dict[str, str]:
        """Environment variables that point azure-identity and our settings at this tenant."""
        return {
            "IDENTITY_ENDPOINT": f"{self.url}/msi/token",
            "IDENTITY_HEADER": self.config.identity_header,
            "GRAPH_BASE_URL": self.graph_url,
            "AUTHORITY_HOST": self.url,
            "TENANT_ID": self.state.tenant_id,
            "TEAMS_BOT_OPENID_METADATA_URL": self.url + bot_channel.METADATA_PATH,
        }

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        local_ca().issue_cert("127.0.0.1", "localhost").configure_cert(context)
        return context

    async def start_async(self) -> None:
        """Start on the current loop (the standalone CLI uses this)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        http = web.TCPSite(self._runner, self.config.host, self.config.port)
        await http.start()
        https = web.TCPSite(self._runner, self.config.host, self.config.https_port, ssl_context=self.ssl_context())
        await https.start()
        self.port = http._server.sockets[0].getsockname()[1]
        self.https_port = https._server.sockets[0].getsockname()[1]
        self.app[URLS].update(http=self.url, https=self.https_url)

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        shutil.rmtree(self.ca_path.parent, ignore_errors=True)
