"""The Teams app package in infra/teams-app: a personal, notification-only bot whose id is our identity."""

from __future__ import annotations

import importlib.util
import json
import struct
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

APP = ROOT / "infra" / "teams-app"
VALUES = {
    "BOT_APP_ID": "a1f0c0de-0000-4000-8000-000000000001",
    "TEAMS_APP_EXTERNAL_ID": "7d1c3d3e-5a7b-4c1e-9d2f-000000000042",
    "ORGANIZATION_NAME": "Contoso",
    "ORGANIZATION_URL": "https://contoso.example",
    "PRIVACY_URL": "https://contoso.example/privacy",
    "TERMS_URL": "https://contoso.example/terms",
}


def package_module():
    spec = importlib.util.spec_from_file_location("teams_app_package", APP / "package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_the_package_holds_a_filled_manifest_and_both_icons(tmp_path: Path):
    """The zip has manifest.json (placeholders filled) and the 192 px colour and 32 px outline icons."""
    out = package_module().build(tmp_path / "app.zip", VALUES)
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
    assert "${{" not in json.dumps(manifest)
    [bot] = manifest["bots"]
    assert bot["botId"] == manifest["webApplicationInfo"]["id"] == VALUES["BOT_APP_ID"]
    assert (bot["scopes"], bot["isNotificationOnly"]) == (["personal"], True)
    assert manifest["id"] == VALUES["TEAMS_APP_EXTERNAL_ID"]
    assert png_size(APP / "color.png") == (192, 192)
    assert png_size(APP / "outline.png") == (32, 32)


def test_a_missing_value_is_named():
    """Without BOT_APP_ID the script stops and says which value is missing."""
    with pytest.raises(SystemExit, match="BOT_APP_ID"):
        package_module().render({k: v for k, v in VALUES.items() if k != "BOT_APP_ID"})
