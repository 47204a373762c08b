"""Write labextension/src/protocol.generated.ts from the protocol's JSON Schema.

    .venv/bin/python scripts/gen_protocol_ts.py          # regenerate
    .venv/bin/python scripts/gen_protocol_ts.py --check  # exit 1 when the file drifts

The schema comes from the pydantic models (openfoal_kernel.protocol.schema). The subset of
JSON Schema that pydantic emits (objects, $ref, anyOf, enum, const, arrays, maps) maps to
TypeScript here, so the check runs in the Python test suite without Node.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from openfoal_kernel.protocol.schema import protocol_schema

OUT = Path(__file__).resolve().parent.parent / "labextension" / "src" / "protocol.generated.ts"
HEADER = """\
/**
 * Wire types of the OpenFoal gateway protocol, generated from the pydantic models'
 * JSON Schema by scripts/gen_protocol_ts.py. Do not edit: change the models in
 * openfoal_kernel/protocol/ and regenerate (a test fails when this file drifts).
 */
"""
SCALARS = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}


def _iname(name: str) -> str:
    return f"I{name}"


def _ts(schema: dict[str, Any], indent: str) -> str:
    """The TypeScript type of one schema node."""
    if "$ref" in schema:
        return _iname(str(schema["$ref"]).rsplit("/", 1)[-1])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(dict.fromkeys(_ts(s, indent) for s in schema["anyOf"]))
    kind = schema.get("type")
    if kind in SCALARS:
        return SCALARS[kind]
    if kind == "null":
        return "null"
    if kind == "array":
        item = _ts(schema.get("items", {}), indent)
        return f"({item})[]" if " " in item else f"{item}[]"
    if kind == "object":
        if "properties" in schema:
            return _object(schema, indent)
        extra = schema.get("additionalProperties")
        value = _ts(extra, indent) if isinstance(extra, dict) else "unknown"
        return f"Record<string, {value}>"
    return "unknown"


def _object(schema: dict[str, Any], indent: str) -> str:
    """An object type's body, one member per line."""
    inner = indent + "  "
    required = set(schema.get("required", []))
    lines = ["{"]
    for key, prop in schema.get("properties", {}).items():
        name = key if key.isidentifier() else json.dumps(key)
        optional = "" if key in required else "?"
        lines.append(f"{inner}{name}{optional}: {_ts(prop, inner)};")
    if schema.get("additionalProperties") is True:
        lines.append(f"{inner}[key: string]: unknown;")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def _doc(text: str) -> str:
    first = text.strip().splitlines()[0].replace("``", "`") if text.strip() else ""
    return f"/** {first} */\n" if first else ""


def render(schema: dict[str, Any]) -> str:
    """The whole generated module."""
    parts = [HEADER]
    for name, node in sorted(schema["$defs"].items()):
        doc = _doc(node.get("description", ""))
        if node.get("type") == "object" and "properties" in node:
            parts.append(f"{doc}export interface {_iname(name)} {_object(node, '')}\n")
        else:
            parts.append(f"{doc}export type {_iname(name)} = {_ts(node, '')};\n")
    methods = schema["methods"]
    side = [name for name, m in methods.items() if m["sideEffect"]]
    parts.append(
        "/** Methods with a side effect: each request carries `params.idempotencyKey`. */\n"
        "export const SIDE_EFFECT_METHODS: ReadonlySet<string> = new Set([\n"
        + ",\n".join(f"  {json.dumps(n)}" for n in side)
        + "\n]);\n"
    )
    parts.append(
        "/** The methods this server serves: params and result type of each. */\n"
        "export interface IMethods {\n"
        + "".join(
            f"  {json.dumps(n)}: {{ params: {_iname(m['params'])}; "
            f"result: {_iname(m['result'])} }};\n"
            for n, m in methods.items()
        )
        + "}\n"
    )
    parts.append(
        "/** The payload type of every event. */\n"
        "export interface IEventPayloads {\n"
        + "".join(f"  {json.dumps(n)}: {_iname(ref)};\n" for n, ref in schema["events"].items())
        + "}\n"
    )
    return "\n".join(parts)


def main() -> int:
    """Regenerate, or with ``--check`` report drift."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file drifts")
    args = parser.parse_args()
    text = render(protocol_schema())
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run scripts/gen_protocol_ts.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
