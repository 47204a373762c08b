"""The OpenAPI document of the REST surface, generated from the protocol's params and result
models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from openfoal_kernel import __version__
from openfoal_kernel.protocol import PROTOCOL_VERSION
from openfoal_kernel.protocol.methods import METHOD_PARAMS, is_side_effect
from openfoal_kernel.protocol.results import METHOD_RESULTS

_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "ok": {"const": False},
                "error": {"$ref": "#/components/schemas/Error"},
            },
        }
    }
}
#: Answers every operation may give besides its own (docs/limits.md).
_COMMON_ERRORS: dict[str, Any] = {
    "401": {
        "description": "UNAUTHORIZED: no valid login (audited)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": _ERROR_BODY,
    },
    "429": {
        "description": "RATE_LIMITED: error.details.retryAfterMs says when to retry",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": _ERROR_BODY,
    },
}


@lru_cache(maxsize=4)
def _paths(offered: frozenset[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["code", "message", "retryable", "traceId"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "retryable": {"type": "boolean"},
                "traceId": {"type": "string"},
                "details": {
                    "type": "object",
                    "properties": {"retryAfterMs": {"type": "integer", "minimum": 1}},
                },
            },
        }
    }
    for method, result in METHOD_RESULTS.items():
        if method == "connect" or (offered is not None and method not in offered):
            continue  # only what this server answers (not METHOD_NOT_FOUND)
        model = METHOD_PARAMS[method]
        for each in (model, result):
            schema = each.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas[name] = sub
            schemas[each.__name__] = schema
        paths[f"/openfoal/api/{method}"] = {
            "post": {
                "operationId": method,
                "summary": (model.__doc__ or method).strip().splitlines()[0],
                "description": "Has a side effect: idempotencyKey required."
                if is_side_effect(method)
                else "Read-only.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "ok": {"const": True},
                                        "payload": {
                                            "$ref": f"#/components/schemas/{result.__name__}"
                                        },
                                    },
                                }
                            }
                        },
                    },
                    **_COMMON_ERRORS,
                    "default": {
                        "description": "error",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "ok": {"const": False},
                                        "error": {"$ref": "#/components/schemas/Error"},
                                    },
                                }
                            }
                        },
                    },
                },
            }
        }
    return paths, schemas


def openapi_document(base_url: str = "/", offered: frozenset[str] | None = None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document (paths relative to the server's base URL), of the
    ``offered`` methods (default: every method of the protocol)."""
    paths, schemas = _paths(offered)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenFoal gateway",
            "version": __version__,
            "description": f"Console REST surface of OpenFoal protocol {PROTOCOL_VERSION}.",
        },
        "servers": [{"url": base_url.rstrip("/") or "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization"}
            },
        },
        "security": [{"token": []}],
    }
