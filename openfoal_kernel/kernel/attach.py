"""A kernel started outside an OpenFoal server asks one to listen on it (``kernels.attach``).

papermill's command line and nbclient start their own kernel: no gateway listens on it, so an
unattended gated call could not park. With ``OPENFOAL_URL`` (the server's base URL) and a
token (``OPENFOAL_TOKEN``, else ``JUPYTER_TOKEN``) in its environment, the kernel sends its
connection info (its connection file) to that server's ``kernels.attach`` before its first
turn; the gateway then opens its comm as for a notebook's kernel. Without them, or when the
server refuses, the kernel goes on alone (its gates wait the gate timeout).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import httpx

URL_ENV = "OPENFOAL_URL"
TOKEN_ENVS = ("OPENFOAL_TOKEN", "JUPYTER_TOKEN")
#: Seconds the request may take (the server answers once it listens on the kernel's iopub).
TIMEOUT_S = 30.0


def connection_of(app: Any) -> dict[str, Any] | None:
    """The kernel's connection info, from the connection file its app was started with."""
    path = getattr(app, "abs_connection_file", None) or getattr(app, "connection_file", None)
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


async def request_attach(app: Any, log: logging.Logger) -> bool:
    """Ask the server in ``OPENFOAL_URL`` to attach to this kernel; True when it did."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        return False
    token = next((os.environ[k] for k in TOKEN_ENVS if os.environ.get(k)), "")
    connection = connection_of(app)
    if connection is None:
        log.warning("OpenFoal: no connection file to attach this kernel to %s", url)
        return False
    params = {
        "idempotencyKey": f"attach-{uuid.uuid4().hex}",
        "connection": connection,
    }
    endpoint = url.rstrip("/") + "/openfoal/api/kernels.attach"
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
            r = await http.post(endpoint, json=params, headers=headers)
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("OpenFoal: could not attach this kernel to %s: %s", url, exc)
        return False
    if r.status_code != 200 or not body.get("ok"):
        log.warning("OpenFoal: %s refused to attach this kernel: %s", url, body.get("error"))
        return False
    log.info("OpenFoal: attached to %s as %s", url, body["payload"].get("kernelId"))
    return True
