"""A small function app the dev host tests load: every trigger and auth level the host must handle."""

from __future__ import annotations

import json

import azure.functions as func

app = func.FunctionApp()
calls: dict[str, list] = {"queue": [], "timer": []}
fail_queue_bodies: set[bytes] = set()


@app.route(route="items/{id}/parts/{part?}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
async def items(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "params": dict(req.route_params),
        "query": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-sample"),
    }
    return func.HttpResponse(json.dumps(payload), mimetype="application/json", headers={"x-echo": "yes"})


@app.route(route="guid/{key:guid}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def by_guid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params["key"])


@app.route(route="secret", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:  # sync on purpose: runs on a worker thread
    return func.HttpResponse("behind a key", status_code=200)


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="SampleStorage")
async def on_message(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    calls["queue"].append((body, msg.dequeue_count))
    if body in fail_queue_bodies:
        raise RuntimeError("asked to fail")


@app.timer_trigger(arg_name="timer", schedule="0 0 3 * * *", run_on_startup=False)
async def nightly(timer: func.TimerRequest) -> None:
    calls["timer"].append(timer.past_due)
