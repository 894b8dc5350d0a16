"""Turns a Message into an Adaptive Card, plain text and HTML (every value escaped for its format)."""

from __future__ import annotations

import html
from typing import Any

from .message import Message

# Adaptive Card 1.4 is what Teams renders for bots and Workflows posts:
# https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-reference#adaptive-card
CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def to_text(message: Message) -> str:
    lines = [message.heading, "", *message.paragraphs]
    if message.facts:
        lines += ["", *(f"{name}: {value}" for name, value in message.facts)]
    if message.link:
        lines += ["", f"{message.link[0]}: {message.link[1]}"]
    return "\n".join(lines).strip() + "\n"


def to_html(message: Message) -> str:
    e = html.escape
    parts = [f"<h2>{e(message.heading)}</h2>", *(f"<p>{e(p)}</p>" for p in message.paragraphs)]
    if message.facts:
        rows = "".join(f"<tr><th align='left'>{e(n)}</th><td>{e(v)}</td></tr>" for n, v in message.facts)
        parts.append(f"<table>{rows}</table>")
    if message.link:
        parts.append(f'<p><a href="{e(message.link[1])}">{e(message.link[0])}</a></p>')
    return "<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>"


def to_card(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.heading,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            **({"color": "Attention"} if message.alert else {}),
        },
        *({"type": "TextBlock", "text": p, "wrap": True} for p in message.paragraphs),
    ]
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in message.facts]})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "fallbackText": to_text(message),
        "body": body,
    }
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": message.link[0], "url": message.link[1]}]
    return card


def card_attachment(message: Message) -> dict[str, Any]:
    return {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": to_card(message)}
