"""The HTTP server: FastAPI routes over the served models (run with uvicorn).

    GET    /                              the gate explorer page
    GET    /docs                          the OpenAPI page FastAPI writes
    GET    /v1/health                     {"status": "ok", ...}
    GET    /v1/models                     every model's metadata
    GET    /v1/models/NAME                one model's metadata
    POST   /v1/models/NAME/forecast       forecast from a posted history
    POST   /v1/models/NAME/classify       classify texts or sequences
    POST   /v1/models/NAME/generate       generate text (server-sent events)
    POST   /v1/models/NAME/translate      translate sentences
    POST   /v1/models/NAME/finance        forecast from posted prices
    POST   /v1/models/NAME/explain        prediction and gates of one input (the page's view)
    POST   /v1/models/NAME/sessions       open a streaming session
    POST   /v1/sessions/ID                push the next piece of the stream
    DELETE /v1/sessions/ID                close it

Answers are written as JSONResponse directly: FastAPI's generic encoding of a returned
dict walks every number (an explain answer holds thousands) and costs more than the
model. Every error is JSON, ``{"error": {"code": ..., "message": ...}}``, with a 4xx status
for what the client can fix. With a token, every /v1 route but health needs
``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Route

from lstmkit import __version__
from lstmkit.errors import LstmkitError
from lstmkit.serve.limits import Limits, RequestError
from lstmkit.serve.schemas import (
    ClassifyBody,
    ExplainBody,
    ForecastBody,
    GenerateBody,
    OpenSessionBody,
    PushBody,
    TableBody,
    TranslateBody,
)
from lstmkit.serve.served import ServedModel
from lstmkit.serve.sessions import SessionStore

PAGE = Path(__file__).resolve().parent / "page" / "explorer.html"
OPEN_PATHS = ("/", "/docs", "/openapi.json", "/v1/health")  # no token needed


def create_app(models: list[ServedModel], limits: Limits | None = None,
               token: str | None = None) -> FastAPI:
    """The application serving ``models`` (by their names) within ``limits`` (default
    Limits()); with ``token``, clients must send it."""
    limits = limits or Limits()
    by_name = {model.name: model for model in models}
    sessions = SessionStore(limits.max_sessions, limits.session_ttl)
    app = FastAPI(title="lstmkit", version=__version__,
                  description="LSTM models served from lstmkit run directories.")
    app.state.models, app.state.sessions = by_name, sessions
    app.add_middleware(_BodyLimit, max_bytes=limits.max_body_bytes)
    if token is not None:
        app.add_middleware(_RequireToken, token=token)
    _add_error_handlers(app)

    def named(name: str) -> ServedModel:
        model = by_name.get(name)
        if model is None:
            raise RequestError(404, "unknown_model",
                               f"no model {name!r}; this server has {sorted(by_name)}")
        return model

    def served(name: str, action: str) -> ServedModel:
        model = named(name)
        if action not in model.actions:
            raise RequestError(400, "wrong_task",
                               f"model {name!r} is a {model.task} model; it answers "
                               f"{', '.join(model.actions)}, not {action}")
        return model

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(by_name), "sessions": len(sessions),
                "version": __version__}

    @app.get("/v1/models")
    async def list_models() -> list[dict[str, Any]]:
        return [model.info() for model in by_name.values()]

    @app.get("/v1/models/{name}")
    async def model_info(name: str) -> dict[str, Any]:
        return named(name).info()

    @app.post("/v1/models/{name}/forecast")
    async def forecast(name: str, body: ForecastBody) -> JSONResponse:
        return JSONResponse(await served(name, "forecast").forecast(body))

    @app.post("/v1/models/{name}/classify")
    async def classify(name: str, body: ClassifyBody) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(served(name, "classify").classify, body))

    @app.post("/v1/models/{name}/translate")
    async def translate(name: str, body: TranslateBody) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(served(name, "translate").translate, body))

    @app.post("/v1/models/{name}/finance")
    async def finance(name: str, body: TableBody) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(served(name, "finance").finance, body))

    @app.post("/v1/models/{name}/explain")
    async def explain(name: str, body: ExplainBody) -> JSONResponse:
        return JSONResponse(await asyncio.to_thread(served(name, "explain").explain, body))

    @app.post("/v1/models/{name}/generate")
    async def generate(name: str, body: GenerateBody) -> Response:
        pieces = served(name, "generate").generate(body)
        # the first piece before the answer starts: a bad prompt is then still a 422
        first = await asyncio.to_thread(next, pieces, None)
        if not body.stream:
            rest = await asyncio.to_thread(lambda: "".join(pieces))
            return JSONResponse({"model": name, "text": (first or "") + rest})
        return StreamingResponse(_events(first, pieces), media_type="text/event-stream")

    @app.post("/v1/models/{name}/sessions")
    async def open_session(name: str, body: OpenSessionBody | None = None) -> dict[str, Any]:
        model = served(name, "sessions")
        session = sessions.open(name, model.open_stream())
        answer: dict[str, Any] = {"session": session.id, "model": name,
                                  "expires_after_s": limits.session_ttl}
        if body is not None and (body.text is not None or body.values is not None):
            answer.update(await session.stream.push(PushBody(text=body.text,
                                                             values=body.values)))
        return answer

    async def push(request: Request) -> Response:
        # a plain Starlette route: FastAPI's work per route costs about what the step does
        try:
            body = PushBody.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                          for e in error.errors()]) from None
        session = sessions.get(request.path_params["session_id"])
        # answered on the event loop (batched with the other sessions' steps), no thread hop
        answer = await session.stream.push(body)
        session.steps += 1
        return Response(json.dumps(answer), media_type="application/json")

    # first in the routing table: the router tries its routes in order, ~4 us each
    app.router.routes.insert(0, Route("/v1/sessions/{session_id}", push, methods=["POST"]))
    _document_push(app)

    @app.delete("/v1/sessions/{session_id}")
    async def close_session(session_id: str) -> dict[str, Any]:
        session = sessions.close(session_id)
        return {"closed": session.id, "pushes": session.steps}

    return app


def _document_push(app: FastAPI) -> None:
    """Put the plain push route on the OpenAPI page beside the FastAPI routes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema["components"]["schemas"].setdefault("PushBody", PushBody.model_json_schema())
        schema["paths"].setdefault("/v1/sessions/{session_id}", {})["post"] = {
            "summary": "Push the next piece of a session's stream",
            "parameters": [{"name": "session_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PushBody"}}}},
            "responses": {"200": {"description": "the model's answer after the new steps"}}}
        return schema

    app.openapi = openapi


def _events(first: str | None, pieces: Iterator[str]) -> Iterator[str]:
    """Server-sent events: one ``data`` event per piece of text, then ``end``."""
    if first is not None:
        yield f"data: {json.dumps({'text': first})}\n\n"
        for piece in pieces:  # starlette iterates a plain iterator in a worker thread
            yield f"data: {json.dumps({'text': piece})}\n\n"
    yield "event: end\ndata: {}\n\n"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return _error(error.status, error.code, error.message)

    @app.exception_handler(LstmkitError)
    async def input_error(request: Request, error: LstmkitError) -> JSONResponse:
        return _error(422, "bad_input", str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return _error(400, "malformed_json", "the body is not valid JSON")
        described = "; ".join(
            f"{'.'.join(str(part) for part in p.get('loc', ())[1:]) or 'body'}: {p.get('msg')}"
            for p in problems[:5])
        return _error(422, "invalid_request", described)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(error.status_code, codes.get(error.status_code, "http_error"),
                      f"{request.method} {request.url.path}: {error.detail}; see /docs")


class _RequireToken:
    """Refuses (401) requests without ``Authorization: Bearer TOKEN``, but on OPEN_PATHS.

    Plain ASGI rather than FastAPI's http middleware: that one costs a task group and a
    stream per request, which a streaming step (microseconds of work) would feel."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = _error(401, "unauthorized", "send the server's token as "
                                                       "'Authorization: Bearer TOKEN'")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyLimit:
    """Refuses bodies above ``max_bytes`` (413) before the route reads them: by the declared
    length, or, for a body sent in chunks, by reading it (up to the limit) first."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = _error(413, "body_too_large",
                          f"the request body is larger than the server's {self.max_bytes} "
                          "bytes (--max-body-bytes); send less per request")
        await response(scope, receive, send)
