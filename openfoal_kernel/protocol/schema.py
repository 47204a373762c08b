"""The wire contract as one JSON Schema document, exported from the pydantic models.

``$defs`` holds every model; ``methods`` names each served method's params and result
models and whether it has a side effect; ``events`` names each event's payload model. The
TypeScript protocol types of the lab extension are generated from this document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import frames, sync, transcript, types
from .methods import METHOD_PARAMS, is_side_effect
from .payloads import EVENT_PAYLOADS
from .results import METHOD_RESULTS

#: Types the protocol names on their own, besides those reached from methods and events.
NAMED_TYPES: tuple[type[BaseModel], ...] = (
    types.Session,
    types.Policy,
    types.GateItem,
    types.AuditEntry,
    transcript.ChatMessage,
    frames.ErrorBody,
    frames.ReqFrame,
    frames.ResFrame,
    frames.EventFrame,
    sync.SyncBatch,
    sync.SyncBatchResult,
    sync.SyncHistory,
    sync.SyncResolveRequest,
)


def _ref_name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema of the wire contract, with the method and event tables."""
    served = [name for name in METHOD_PARAMS if name in METHOD_RESULTS]
    models: list[type[BaseModel]] = [*NAMED_TYPES]
    for name in served:
        models += [METHOD_PARAMS[name], METHOD_RESULTS[name]]
    models += list(EVENT_PAYLOADS.values())
    unique = list(dict.fromkeys(models))
    refs, schema = models_json_schema(
        [(model, "validation") for model in unique], ref_template="#/$defs/{model}"
    )
    ref_of = {model: _ref_name(refs[(model, "validation")]) for model in unique}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OpenFoal gateway protocol",
        "$defs": schema["$defs"],
        "methods": {
            name: {
                "params": ref_of[METHOD_PARAMS[name]],
                "result": ref_of[METHOD_RESULTS[name]],
                "sideEffect": is_side_effect(name),
            }
            for name in served
        },
        "events": {name: ref_of[model] for name, model in EVENT_PAYLOADS.items()},
    }
