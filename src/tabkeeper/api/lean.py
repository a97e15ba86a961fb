"""The hot routes' handler: the check, session starts and events (LIM-1, LIM-3, USE-1).

FastAPI's general handler solves a graph of dependencies, re-validates what the endpoint
returns against its response model and keeps several exit stacks: for `POST /v1/check`
on SQLite that cost about 0.19 ms of CPU a request, as much as the check itself
(docs/benchmarks.md). `LeanRoute` builds the same arguments straight from the request
for endpoints of one shape, and serializes the returned model once:

- a JSON body of one pydantic model, read as FastAPI reads it (a JSON content type, or
  the raw bytes otherwise; `json_invalid` and `missing` errors and the validation errors
  of the model, each located under `body`, raised as `RequestValidationError`, so the
  422 problem is the same);
- `ApiDep` and `CallerDep` (api/context.py), the same functions FastAPI would call;
- a dependency taking only the request (the events' reader), awaited as FastAPI would.

An endpoint of any other shape (path or query parameters, other dependencies) is
handled by FastAPI as usual. The OpenAPI document is FastAPI's either way: the route and
its dependant are unchanged, only the handler differs. Routers using LeanRoute take no
router-level dependencies (none of tabkeeper's do).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from tabkeeper.api.context import _api, get_api, get_caller, get_caller_of

Step = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to build an endpoint's arguments: the body's parameter and model, and the
    dependencies' parameters with the function that makes each, in FastAPI's order."""

    body: tuple[str, type[BaseModel]] | None
    steps: tuple[tuple[str, Step], ...]


class LeanRoute(APIRoute):
    """An APIRoute whose handler, for endpoints of the shape above, skips FastAPI's
    dependency solving and response re-validation (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        plan = _plan_of(self)
        if plan is None:
            return super().get_route_handler()
        return _handler(self, plan)


async def _api_of(request: Request) -> Any:
    return get_api(request)


def _plan_of(route: APIRoute) -> _Plan | None:
    dependant = route.dependant
    if (
        not inspect.iscoroutinefunction(dependant.call)
        or dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.request_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or len(dependant.body_params) > 1
        or not isinstance(route.response_model, type)
        or not issubclass(route.response_model, BaseModel)
    ):
        return None
    body = None
    if dependant.body_params:
        field = dependant.body_params[0]
        model = field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        body = (field.name, model)
    steps: list[tuple[str, Step]] = []
    for sub in dependant.dependencies:
        if sub.call is _api:
            steps.append((sub.name or "", _api_of))
        elif sub.call is get_caller:
            steps.append((sub.name or "", get_caller_of))
        elif (
            sub.call is not None
            and inspect.iscoroutinefunction(sub.call)
            and sub.request_param_name
            and not (sub.dependencies or sub.body_params or sub.query_params)
            and len(inspect.signature(sub.call).parameters) == 1
        ):
            steps.append((sub.name or "", sub.call))
        else:
            return None
    return _Plan(body, tuple(steps))


def _handler(route: APIRoute, plan: _Plan) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """FastAPI's order: the body read (malformed JSON: 422 at once), then each
    dependency as declared (a missing credential: 401), then the body's model."""
    endpoint = route.dependant.call
    assert endpoint is not None
    status = route.status_code or 200
    exclude_none = route.response_model_exclude_none
    by_alias = route.response_model_by_alias

    async def handle(request: Request) -> Response:
        values: dict[str, Any] = {}
        if plan.body is not None:
            raw = _json(await request.body(), request)
        for name, step in plan.steps:
            values[name] = await step(request)
        if plan.body is not None:
            name, model = plan.body
            values[name] = _validated(model, raw)
        answer = await endpoint(**values)
        return Response(
            answer.model_dump_json(exclude_none=exclude_none, by_alias=by_alias),
            status_code=status,
            media_type="application/json",
        )

    return handle


_MISSING = object()


def _json(raw: bytes, request: Request) -> Any:
    """The body as FastAPI reads it for a model: JSON when the content type says so,
    else the bytes themselves (which the model then refuses); nothing: missing."""
    if not raw:
        return _MISSING
    if not _is_json(request.headers.get("content-type")):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": error.msg}}],
            body=error.doc,
        ) from None  # fmt: skip
    except UnicodeDecodeError:
        raise HTTPException(400, "There was an error parsing the body") from None


def _validated(model: type[BaseModel], value: Any) -> BaseModel:
    if value is _MISSING:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        return model.model_validate(value, from_attributes=True)  # as FastAPI validates
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)],
            body=value,
        ) from None


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test: `application/json` or `application/*+json`, parameters aside."""
    if not content_type:
        return False
    kind = content_type.partition(";")[0].strip().lower()
    main, _, sub = kind.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))
