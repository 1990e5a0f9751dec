"""``/openapi.json`` as served: FastAPI's document less what zoneflow never answers.

FastAPI lists a 422 "Validation Error" for every operation with a body or
parameters; zoneflow answers a refused request 400 with Designate's error
body (:mod:`zoneflow.api.errors`), which the operations already list. The
422 and its schemas are taken out, so a client generated from the document
(or schemathesis, which the tests run against it) expects what comes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            models = schema.get("components", {}).get("schemas", {})
            for name in _FASTAPI_ONLY:
                models.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
