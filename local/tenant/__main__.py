"""`python -m local.tenant --port 8900 --fixture FILE`: serve the local tenant until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from .server import TenantConfig, TenantServer
from .state import DEFAULT_FIXTURE


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.tenant", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="HTTP port (Graph, EM, MSI, OIDC, control)")
    parser.add_argument(
        "--https-port", type=int, default=8901, help="HTTPS port (ACS Email and other azure-core clients)"
    )
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE, help="tenant fixture JSON")
    parser.add_argument(
        "--identity-header", default="local-identity-header", help="IDENTITY_HEADER value clients must send"
    )
    parser.add_argument("--ca-file", type=Path, help="write the local CA certificate (PEM) here for SSL_CERT_FILE")
    args = parser.parse_args()

    config = TenantConfig(
        host=args.host, port=args.port, https_port=args.https_port, identity_header=args.identity_header
    )
    server = TenantServer(args.fixture, config=config)

    async def serve() -> None:
        await server.start_async()
        if args.ca_file:
            args.ca_file.write_bytes(server.ca_path.read_bytes())
        print(f"local tenant {server.state.tenant_id} on {server.url} and {server.https_url}", flush=True)
        for key, value in server.env().items():
            print(f"  {key}={value}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
