"""A small function app the dev host tests load: every trigger and auth level the host must handle."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import azure.functions as func

app = func.FunctionApp()
calls: dict[str, list] = {"queue": [], "timer": []}
fail_queue_bodies: set[bytes] = set()


@app.route(route="items/{id}/parts/{part?}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
async def items(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.route_params),
        "query": dict(req.params),
        "body": req.get_body().decode(),
        "header": req.headers.get("x-sample"),
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"x-echo": "yes"}
    )


@app.route(route="guid/{key:guid}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def by_guid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.route_params["key"])


@app.route(route="pages/{n:int:min(1)}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def page(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"page {req.route_params['n']}")


@app.route(route="pages/latest", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def latest_page(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("latest")


@app.route(route="greet/{name=world}", auth_level=func.AuthLevel.ANONYMOUS)  # no methods: every method
async def greet(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"<p>hello {req.route_params['name']}</p>", mimetype="text/html", charset="iso-8859-1")


@app.route(route="secret", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:  # sync on purpose: runs on a worker thread
    body = {"thread": threading.current_thread().name, "body": req.get_body().decode()}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> str:
    return "admin"


@app.route(route="cookies", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse(b"\x00\x01", mimetype="application/octet-stream", status_code=200)
    response.headers.add("Set-Cookie", "a=1; Path=/")
    response.headers.add("Set-Cookie", "b=2; Path=/")
    return response


@app.route(route="context", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"function": context.function_name, "invocation": context.invocation_id}))


@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.route(route="slow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("s", "5")))
    return func.HttpResponse("done")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="SampleStorage")
async def on_message(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    calls["queue"].append((body, msg.dequeue_count, msg.id, msg.pop_receipt, msg.insertion_time, time.monotonic()))
    if body in fail_queue_bodies:
        raise RuntimeError("asked to fail")


@app.timer_trigger(arg_name="timer", schedule="0 0 3 * * *", run_on_startup=False)
async def nightly(timer: func.TimerRequest) -> None:
    calls["timer"].append(timer)
