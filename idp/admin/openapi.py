"""The admin API's OpenAPI 3.1 document, built from `idp.admin.api.OPERATIONS`.

Served at `/admin/api/v1/openapi.json` and committed as `docs/admin-api.openapi.json` (a test
checks that the two are the same): regenerate it with
`python -m idp.admin.openapi > docs/admin-api.openapi.json`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

from idp.admin import api_models as m
from idp.admin.api import OPERATIONS, PREFIX

ERRORS = {
    "400": "The request is malformed or an action was refused (the description says why).",
    "401": "No valid admin access token.",
    "403": "The token does not grant the admin scope.",
    "404": "Nothing by that name.",
    "409": "Already exists, or changed meanwhile (send it again).",
    "413": "The body is larger than the limit (`max_request_body`).",
    "415": "The body is not JSON (not CSV, for an import).",
}
BODY_ERRORS = ("413", "415")  # only for operations that take a body
REQUIRED_BODIES = (m.ClientIn, m.ChannelTotalsIn, m.CostsIn)


def _schemas() -> tuple[dict[str, Any], dict[type[BaseModel], str]]:
    models: list[type[BaseModel]] = [m.ErrorOut]
    for op in OPERATIONS:
        models.append(op.response)
        if op.body is not None:
            models.append(op.body)
    unique = list(dict.fromkeys(models))
    keys, schema = models_json_schema(
        [(model, "validation" if _is_input(model) else "serialization") for model in unique],
        ref_template="#/components/schemas/{model}",
    )
    refs: dict[type[BaseModel], str] = {}
    for (model, _mode), value in keys.items():
        assert isinstance(model, type) and issubclass(model, BaseModel)
        refs[model] = str(value["$ref"])
    defs: dict[str, Any] = schema.get("$defs", {})
    return defs, refs


def _is_input(model: type[BaseModel]) -> bool:
    return any(op.body is model for op in OPERATIONS)


def _parameters(path: str, query: tuple[tuple[str, str, str], ...]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]
    for name, kind, description in query:
        schema: dict[str, Any] = {"type": kind}
        if kind == "integer":
            schema.update(minimum=0, maximum=200 if name == "limit" else 100000000)
        else:
            schema["maxLength"] = 200
        found.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": description,
            }
        )
    return found


@cache
def document() -> dict[str, Any]:
    schemas, refs = _schemas()
    error = {"content": {"application/json": {"schema": {"$ref": refs[m.ErrorOut]}}}}
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {
            str(op.status): {
                "description": "Done.",
                "content": {"application/json": {"schema": {"$ref": refs[op.response]}}},
            }
        }
        for code, description in ERRORS.items():
            if code in BODY_ERRORS and op.body is None and not op.csv:
                continue
            responses[code] = {"description": description, **error}
        operation: dict[str, Any] = {
            "operationId": re.sub(r"\W+", "_", f"{op.method.lower()}{op.path}").strip("_"),
            "summary": op.summary,
            "tags": list(op.tags),
            "parameters": _parameters(op.path, op.query),
            "responses": responses,
        }
        if op.body is not None:
            media = ("application/merge-patch+json",) if op.method == "PATCH" else ()
            operation["requestBody"] = {
                "required": op.body in REQUIRED_BODIES,
                "content": {
                    kind: {"schema": {"$ref": refs[op.body]}}
                    for kind in (*media, "application/json")
                },
            }
        elif op.csv:
            operation["requestBody"] = {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Digital identity provider: admin API",
            "version": "1",
            "description": (
                "The administrative actions of the console, as JSON. Authenticate with an "
                "access token carrying the `admin` scope, obtained with the client-credentials "
                "grant by an e-service an administrator allowed that scope. Every action is "
                "written to the audit log."
            ),
        },
        "servers": [{"url": PREFIX}],
        "security": [{"adminToken": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token with the admin scope (client credentials).",
                }
            },
        },
    }


def text() -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(document(), headers={"Cache-Control": "public, max-age=300"})


if __name__ == "__main__":
    print(text(), end="")
