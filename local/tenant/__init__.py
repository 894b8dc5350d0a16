"""The local tenant: Graph, Entitlement Management, managed identity, ACS Email and Bot Connector on loopback."""

from .server import TenantConfig, TenantServer, build_app
from .state import EM_APP_ID, TenantState

__all__ = ["EM_APP_ID", "TenantConfig", "TenantServer", "TenantState", "build_app"]
