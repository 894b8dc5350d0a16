"""Shared fixtures: the local tenant (in-process, its own thread), Azurite (one per test session), and
clients pointed at them the way product code will be."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.tenant import TenantServer
from local.tenant.fixtures import make_default

ROOT = Path(__file__).resolve().parent.parent
F = make_default  # ids of the fixture tenant: F.U["tom"], F.G["onboarding"], F.APP["func"][0], ...


@pytest.fixture
def tenant() -> Iterator[TenantServer]:
    """A fresh local tenant with the default fixture, on free ports, for one test."""
    with TenantServer(port=0, https_port=0) as server:
        yield server


@pytest.fixture
def tenant_env(tenant: TenantServer, monkeypatch: pytest.MonkeyPatch) -> TenantServer:
    """The tenant, with IDENTITY_ENDPOINT/IDENTITY_HEADER set so ManagedIdentityCredential reaches it."""
    for key, value in tenant.env().items():
        monkeypatch.setenv(key, value)
    for key in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(key, raising=False)
    return tenant


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Azurite:
    """A running Azurite with its three ports and the matching development connection string."""

    ACCOUNT = "devstoreaccount1"
    KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

    def __init__(self, blob: int, queue: int, table: int):
        self.blob_port, self.queue_port, self.table_port = blob, queue, table

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={self.KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/{self.ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{self.queue_port}/{self.ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{self.table_port}/{self.ACCOUNT};"
        )


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    found = str(local) if local.exists() else shutil.which("azurite")
    if not found:
        raise RuntimeError("Azurite is not installed: run scripts/test (it runs `npm install`)")
    return found


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite on free ports, in memory, without telemetry, for the whole test session."""
    if os.environ.get("AZURITE_CONNECTION_STRING_PORTS"):
        blob, queue, table = (int(p) for p in os.environ["AZURITE_CONNECTION_STRING_PORTS"].split(","))
        yield Azurite(blob, queue, table)
        return
    blob, queue, table = _free_port(), _free_port(), _free_port()
    process = subprocess.Popen(
        [
            azurite_binary(),
            "--silent",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queuePort",
            str(queue),
            "--tablePort",
            str(table),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for port in (blob, queue, table):
            _wait_port(port)
        yield Azurite(blob, queue, table)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
