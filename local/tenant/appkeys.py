"""Typed keys for what the tenant's aiohttp application carries (aiohttp wants AppKey, not strings)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .state import TenantState

STATE = web.AppKey("state", TenantState)
CONFIG = web.AppKey("config", Any)  # server.TenantConfig (not imported: server imports the route modules)
# {"http": "http://127.0.0.1:<port>", "https": "https://127.0.0.1:<port>"}, filled once the server listens.
URLS = web.AppKey("urls", dict)
