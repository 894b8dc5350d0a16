"""GET /api/health: the app is loaded and answering (no dependency is called)."""

from __future__ import annotations

import azure.functions as func

from .http_util import json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})
