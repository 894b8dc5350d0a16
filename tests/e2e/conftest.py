"""The whole stack for end-to-end tests: the local tenant, Azurite, and the dev host serving function_app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from extensions import container as product_container
from extensions.settings import get_settings
from local.host import DevHost
from local.tenant import TenantServer
from tests.conftest import ROOT
from tests.stack import EMControl, product_settings


@dataclass
class Stack:
    tenant: TenantServer
    host: DevHost
    em: EMControl
    settings: dict[str, str]

    def container(self):
        return product_container.get_container()


@pytest.fixture
def stack(tenant: TenantServer, azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stack]:
    """function_app on the dev host with fresh tables/queue, pointed at a fresh local tenant.

    host.json is the product's, except that a failed message reappears after 1 s instead of 30 s.
    """
    host_json = json.loads((ROOT / "host.json").read_text())
    host_json["extensions"]["queues"].update(visibilityTimeout="00:00:01", maxPollingInterval="00:00:00.200")
    (tmp_path / "host.json").write_text(json.dumps(host_json))
    settings = product_settings(tenant, azurite.connection_string)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    product_container.use_container(None)
    host = DevHost(settings_file=None, host_json=tmp_path / "host.json", port=0, function_key="e2e-key")
    with host:
        # Graph's real rule: a batch is fully sequential or fully parallel.
        httpx.put(f"{tenant.url}/_control/batch", json={"sequencing": "strict"}).raise_for_status()
        em = EMControl(tenant)
        em.point_extensions_at(f"{host.url}/api/callout")
        yield Stack(tenant, host, em, settings)
        current = product_container._container
        if current is not None:
            host.call(current.close())
    product_container.use_container(None)
    get_settings.cache_clear()
