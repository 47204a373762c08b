"""Checks that a message is one the Jupyter messaging spec names, with a valid content.

jupyter_kernel_test's validator knows every type except the comm messages and
``iopub_welcome``; their content schemas (from the spec) are added here. Its
``input_request`` schema types ``password`` as a number where the spec (and ipykernel) has a
boolean; the spec's schema is used for it.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft4Validator
from jupyter_kernel_test.msgspec_v5 import msg_structure_validator, validate_message

_COMM_ID = {"comm_id": {"type": "string"}}
EXTRA_CONTENT = {
    "comm_open": {
        "type": "object",
        "required": ["comm_id", "target_name", "data"],
        "properties": {**_COMM_ID, "target_name": {"type": "string"}, "data": {"type": "object"}},
    },
    "comm_msg": {
        "type": "object",
        "required": ["comm_id", "data"],
        "properties": {**_COMM_ID, "data": {"type": "object"}},
    },
    "comm_close": {
        "type": "object",
        "required": ["comm_id"],
        "properties": {**_COMM_ID, "data": {"type": "object"}},
    },
    "input_request": {
        "type": "object",
        "required": ["prompt", "password"],
        "properties": {"prompt": {"type": "string"}, "password": {"type": "boolean"}},
    },
    "iopub_welcome": {
        "type": "object",
        "required": ["subscription"],
        "properties": {"subscription": {"type": "string"}},
    },
}


def check_spec_message(msg: dict[str, Any]) -> None:
    """Raise unless ``msg`` is a spec message type with a content its schema accepts."""
    msg_type = msg["header"]["msg_type"]
    if msg_type in EXTRA_CONTENT:
        msg_structure_validator.validate(msg)
        Draft4Validator(EXTRA_CONTENT[msg_type]).validate(msg["content"])
    else:
        validate_message(msg)  # a type the spec does not name fails here (KeyError)
