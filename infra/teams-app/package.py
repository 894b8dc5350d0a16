"""Builds the Teams app package (manifest.json + icons in a zip) with the placeholders filled from the environment.

Usage: BOT_APP_ID=<client id of the function app's identity> TEAMS_APP_EXTERNAL_ID=<a GUID you keep>
ORGANIZATION_NAME=... ORGANIZATION_URL=https://... PRIVACY_URL=https://... TERMS_URL=https://...
python infra/teams-app/package.py [out.zip]
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{\{([A-Z_]+)\}\}")


def render(values: dict[str, str]) -> str:
    """manifest.json with every ${{NAME}} replaced; a missing value is an error naming it."""
    text = (HERE / "manifest.json").read_text()
    missing = sorted({name for name in PLACEHOLDER.findall(text) if not values.get(name)})
    if missing:
        raise SystemExit(f"set {', '.join(missing)}")
    rendered = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    json.loads(rendered)
    return rendered


def build(out: Path, values: dict[str, str]) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", render(values))
        for icon in ("color.png", "outline.png"):
            package.write(HERE / icon, icon)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "mfa-reset-teams-app.zip")
    print(build(target, dict(os.environ)))
