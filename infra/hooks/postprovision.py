"""azd postprovision hook: write local.settings.json from the azd environment (azd env get-values).

Only names the app reads are copied, values already in local.settings.json that azd does not know are kept, and
nothing secret exists to copy: every Azure connection is identity-based. Storage stays on Azurite: the Azure
account has shared keys off and only the app's managed identity may use it, which a developer machine does not
have. Run by azd, or by hand from the repo root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# azd output name → app setting name (the same name unless listed).
RENAMES = {"AZURE_TENANT_ID": "TENANT_ID"}
COPIED = {
    "TENANT_ID",
    "MANAGED_IDENTITY_CLIENT_ID",
    "ACS_ENDPOINT",
    "ACS_SENDER_ADDRESS",
    "CALLOUT_AUDIENCE",
    "TEAMS_BOT_APP_ID",
}


def settings_from_env(env: dict[str, str], current: dict) -> dict:
    """local.settings.json's content: the current file with the azd values laid over its Values."""
    values = dict(current.get("Values", {}))
    for name, value in env.items():
        target = RENAMES.get(name, name)
        if target in COPIED and value:
            values[target] = value
    if env.get("RELAY_PRINCIPAL_APP_ID"):
        values["CALLOUT_ALLOWED_CALLERS"] = env["RELAY_PRINCIPAL_APP_ID"]
    if env.get("FUNCTION_APP_URL"):
        values["PICKUP_BASE_URL"] = env["FUNCTION_APP_URL"].rstrip("/") + "/api/pickup"
    return {"IsEncrypted": False, **{k: v for k, v in current.items() if k != "Values"}, "Values": values}


def main() -> int:
    azd = shutil.which("azd")
    if azd is None:
        print("azd is not on PATH: run this from `azd provision`", file=sys.stderr)
        return 1
    command = [azd, "env", "get-values", "--output", "json"]  # fixed arguments, azd resolved from PATH
    raw = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    target = ROOT / "local.settings.json"
    source = target if target.exists() else ROOT / "local.settings.sample.json"
    current = json.loads(source.read_text(encoding="utf-8"))
    target.write_text(json.dumps(settings_from_env(json.loads(raw), current), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
