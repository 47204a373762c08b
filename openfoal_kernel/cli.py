"""``openfoal``: a command-line client of a running OpenFoal server.

``openfoal chat "question"`` streams one turn to the terminal; ``openfoal export SESSION_ID
-o file.ipynb`` writes a session as a notebook (``sessions.export``). The server is found from
``--url``/``--token``, ``OPENFOAL_URL``/``JUPYTER_TOKEN``, or the running Jupyter servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from .client import GatewayClient, GatewayError
from .protocol.events import GATE_REQUESTED


def _discover() -> tuple[str, str | None]:
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:  # pragma: no cover - jupyter_server is a dependency
        return "", None
    for info in list_running_servers():
        return str(info["url"]), info.get("token") or None
    return "", None


def ws_url(http_url: str) -> str:
    """``http://host:port/base/`` -> ``ws://host:port/base/openfoal/ws``."""
    base = http_url.rstrip("/") + "/"
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "openfoal/ws"


#: The exit code of ``openfoal chat --no-wait`` when the turn waits for an approval.
PARKED_EXIT = 3


def parked_line(url: str, gate: dict[str, Any], session_id: str) -> str:
    """What ``--no-wait`` prints for a gate it leaves pending."""
    link = url.rstrip("/") + f"/lab?openfoal-gate={gate.get('gateId')}"
    return (
        f"\nwaiting for approval: {gate.get('toolName')} ({gate.get('risk')}) is parked as gate "
        f"{gate.get('gateId')}; approve or reject it in the Approvals panel ({link}); "
        f"the run goes on in session {session_id} once it is decided"
    )


async def chat(
    url: str, token: str | None, text: str, session: str | None, *, no_wait: bool = False
) -> int:
    """Run one turn, streaming the answer; return a process exit code.

    With ``no_wait``, a gated call is left pending: the command prints the gate and exits
    with :data:`PARKED_EXIT`; the run waits on the server for the decision."""
    async with GatewayClient(ws_url(url), token=token) as client:
        params: dict[str, Any] = {"sessionId": session} if session else {}
        try:
            accepted = await client.request("agent.run", {"input": text, **params})
        except GatewayError as exc:
            print(f"error {exc.code.value}: {exc.message}", file=sys.stderr)
            return 2
        async for frame in client.run_events(accepted["runId"], timeout=3600):
            payload = frame["payload"]
            if frame["event"] == "agent.delta":
                sys.stdout.write(payload["delta"])
                sys.stdout.flush()
            elif frame["event"] == "agent.tool_call":
                print(f"\n[tool {payload['toolName']}] {payload['args']}", file=sys.stderr)
            elif frame["event"] == "agent.tool_result":
                print(f"[{payload['status']} in {payload['durationMs']:.0f} ms]", file=sys.stderr)
            elif frame["event"] == GATE_REQUESTED and no_wait:
                print(parked_line(url, payload["gate"], accepted["sessionId"]), file=sys.stderr)
                return PARKED_EXIT
            elif frame["event"] == "agent.failed":
                err = payload["error"]
                print(
                    f"\nerror {err['code']}: {err['message']} (trace {err.get('traceId')})",
                    file=sys.stderr,
                )
                return 1
        print(f"\n(session {accepted['sessionId']})", file=sys.stderr)
        return 0


async def fetch_export(url: str, token: str | None, session: str) -> dict[str, Any]:
    """The ``sessions.export`` payload of one session (raises :class:`GatewayError`)."""
    async with GatewayClient(ws_url(url), token=token) as client:
        return await client.request("sessions.export", {"sessionId": session})


def export(url: str, token: str | None, session: str, out: str | None) -> int:
    """Write the session's notebook to ``out`` (default ``<sessionId>.ipynb``; ``-``: stdout)."""
    try:
        res = asyncio.run(fetch_export(url, token, session))
    except GatewayError as exc:
        print(f"error {exc.code.value}: {exc.message}", file=sys.stderr)
        return 2
    text = json.dumps(res["notebook"], indent=1, ensure_ascii=False) + "\n"
    if out == "-":
        sys.stdout.write(text)
        return 0
    path = out or res["filename"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    cells = len(res["notebook"]["cells"])
    print(f"wrote {path} ({cells} cells, audit {res['auditHash']})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``openfoal`` command."""
    parser = argparse.ArgumentParser(prog="openfoal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_chat = sub.add_parser("chat", help="send one message and stream the answer")
    p_chat.add_argument("text")
    p_chat.add_argument("--session", help="continue this session id")
    p_chat.add_argument(
        "--no-wait",
        action="store_true",
        help=f"do not wait for approvals: print a gated call's gate and exit {PARKED_EXIT}",
    )
    p_export = sub.add_parser("export", help="write a session as a Jupyter notebook")
    p_export.add_argument("session", help="the session id")
    p_export.add_argument(
        "-o", "--output", help="file to write (default <session>.ipynb; - for stdout)"
    )
    for p in (p_chat, p_export):
        p.add_argument(
            "--url",
            default=os.environ.get("OPENFOAL_URL"),
            help="server URL (default: $OPENFOAL_URL or the running Jupyter server)",
        )
        p.add_argument("--token", default=os.environ.get("JUPYTER_TOKEN"))
    args = parser.parse_args(argv)
    url, token = args.url, args.token
    if not url:
        url, found = _discover()
        token = token or found
    if not url:
        print("no running Jupyter server found; pass --url", file=sys.stderr)
        return 2
    if args.command == "export":
        return export(url, token, args.session, args.output)
    return asyncio.run(chat(url, token, args.text, args.session, no_wait=args.no_wait))


if __name__ == "__main__":
    sys.exit(main())
