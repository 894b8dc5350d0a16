"""The postprovision hook's mapping from azd outputs to local.settings.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("postprovision", ROOT / "infra" / "hooks" / "postprovision.py")
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)


def test_azd_outputs_fill_in_the_tenant_and_caller_but_local_storage_stays_on_azurite():
    current = {"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "WORK_QUEUE_NAME": "q"}}
    env = {"STORAGE_ACCOUNT_NAME": "stmfa1", "AZURE_TENANT_ID": "t-1", "RELAY_PRINCIPAL_APP_ID": "relay-app"}
    values = hook.settings_from_env(env, current)["Values"]
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert not any(name.startswith("AzureWebJobsStorage__") for name in values)
    assert values["TENANT_ID"] == "t-1"
    assert values["CALLOUT_ALLOWED_CALLERS"] == "relay-app"
    assert values["WORK_QUEUE_NAME"] == "q"


def test_outputs_the_app_does_not_read_are_not_copied():
    values = hook.settings_from_env({"AZURE_RESOURCE_GROUP": "rg", "RELAY_TRIGGER_URL": "https://x"}, {})["Values"]
    assert values == {}
