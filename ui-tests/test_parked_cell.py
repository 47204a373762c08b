"""An approved parked gate updates the open notebook whose unattended cell parked on it."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from jupyter_client.manager import KernelManager
from jupyter_core.utils import ensure_event_loop
from labserver import LabServer
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from playwright.sync_api import Page, expect

from openfoal_kernel.scripted import Reply, ScriptedModelServer, TextStep, ToolCallStep

pytestmark = pytest.mark.browser
_GATE_ID = re.compile(r"gate_[0-9a-f]{20}")


class _ServerKernel(KernelManager):
    """A kernel the server started: nbclient connects to it, never starts or stops it."""

    @property
    def has_kernel(self) -> bool:
        return True

    def is_alive(self) -> bool:
        return True

    async def _async_is_alive(self) -> bool:
        return True

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        return None

    async def _async_interrupt_kernel(self) -> None:
        return None

    def client(self, **kwargs: Any) -> Any:
        kc = super().client(**kwargs)
        self._clients = [*getattr(self, "_clients", []), kc]
        return kc

    def close(self) -> None:
        """Stop the clients the runner made (it does not, the kernel not being its own)."""
        for kc in getattr(self, "_clients", []):
            kc.stop_channels()
        self.context.destroy(linger=0)


def _run_unattended(connection_file: Path, nb: Any) -> Exception | None:
    """nbclient over the server's kernel, in a thread with its own event loop."""
    caught: list[Exception | None] = [None]

    def run() -> None:
        loop = ensure_event_loop()
        km = _ServerKernel(connection_file=str(connection_file))
        km.load_connection_file()
        try:
            NotebookClient(nb, km=km, kernel_name="openfoal", timeout=120).execute()
        except CellExecutionError as exc:
            caught[0] = exc
        finally:
            km.close()
            loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(240)
    assert not thread.is_alive(), "the unattended run did not end"
    return caught[0]


def test_approval_shows_the_result_in_the_open_notebook(
    page: Page, lab: LabServer, model: ScriptedModelServer
) -> None:
    """A notebook run unattended parks; opened in the lab and approved, its parked output
    becomes the continued run's result."""
    model.enqueue(
        Reply.of(ToolCallStep(name="bash.exec", arguments={"command": "echo from-the-gate"})),
        Reply.of(TextStep(text="The parked call ran.")),
    )
    name = "parked.ipynb"
    r = httpx.post(
        lab.url + "api/sessions",
        json={"path": name, "type": "notebook", "name": name, "kernel": {"name": "openfoal"}},
        headers=lab.headers,
        timeout=60,
    )
    assert r.status_code == 201, r.text
    kernel_id = r.json()["kernel"]["id"]
    connection = lab.base / "runtime" / f"kernel-{kernel_id}.json"
    assert connection.exists(), connection
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "openfoal", "display_name": "OpenFoal"}
    nb.cells = [nbformat.v4.new_code_cell("say it from the gate")]
    error = _run_unattended(connection, nb)
    assert error is not None and "GATE_PARKED" in str(error)
    gate_id = _GATE_ID.search(str(error)).group(0)  # type: ignore[union-attr]
    nbformat.write(nb, lab.root / name)

    page.goto(f"{lab.url}lab/tree/{name}?token={lab.token}")
    outputs = page.locator('.jp-Notebook .jp-OutputArea-output[data-mime-type="text/plain"]')
    expect(outputs.filter(has_text="Waiting for approval")).to_be_visible(timeout=60_000)
    expect(page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(
        1, timeout=60_000
    )
    resolved = lab.api(
        "policy-gate.resolve",
        {"gateId": gate_id, "decision": "approve", "idempotencyKey": uuid.uuid4().hex},
    )
    assert resolved["gate"]["status"] == "approved"
    result = outputs.filter(has_text=f"Gate {gate_id} was approved")
    expect(result).to_be_visible(timeout=120_000)
    expect(result).to_contain_text("from-the-gate")
    expect(result).to_contain_text("The parked call ran.")
    expect(outputs.filter(has_text="Waiting for approval")).to_have_count(0)
