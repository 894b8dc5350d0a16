"""The channel webhook's signature is masked in whatever form httpx logs its URL, and only https is accepted."""

from __future__ import annotations

import logging

import httpx
import pytest

from extensions.settings import Settings
from notify.factory import build_notifier
from notify.notifier import RecordingNotifier
from notify.webhook import ChannelWebhook

URL = "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=S3cr3tSignatureValue"


async def test_the_signature_is_masked_when_httpx_logs_the_normalised_url(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="httpx")  # configure() quiets it in the app; an operator may not
    webhook = ChannelWebhook(httpx.AsyncClient(), URL)
    normalised = httpx.URL(URL)
    assert str(normalised) != URL  # httpx drops the :443, so matching the configured text alone would miss it

    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", normalised, "HTTP/1.1", 202, "Accepted")

    await webhook.close()
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged
    assert "sig=<redacted>" in logged[0]
    assert "S3cr3tSignatureValue" not in caplog.text


@pytest.mark.parametrize("url", ["http://example.org/hook?sig=x", "ftp://example.org/hook"])
def test_a_webhook_that_is_not_https_is_refused(url: str):
    with pytest.raises(ValueError, match="https"):
        ChannelWebhook(httpx.AsyncClient(), url)


def test_a_refused_webhook_url_turns_the_channel_off_without_logging_the_url(caplog: pytest.LogCaptureFixture):
    """A plain-http webhook in settings is logged as refused (no URL, no signature) and the resets go on."""
    settings = Settings(
        TENANT_ID="t", NOTIFY_CHANNEL_ENABLED=True, TEAMS_CHANNEL_WEBHOOK_URL="http://example.org/hook?sig=Leaky"
    )
    caplog.set_level(logging.INFO)
    notifier = build_notifier(settings, graph=None, auditor=None)
    assert isinstance(notifier, RecordingNotifier)
    assert "TEAMS_CHANNEL_WEBHOOK_URL refused" in caplog.text
    assert "Leaky" not in caplog.text
    assert "example.org" not in caplog.text
