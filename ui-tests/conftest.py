"""Fixtures of the browser tests: Chromium via Playwright, JupyterLab, the scripted model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import LabServer
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from openfoal_kernel.scripted import ScriptedModelServer
from openfoal_testing.plugin import scripted_env

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; a missing browser fails the tests, it never skips them."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium.sh")
    return CHROMIUM


@pytest.fixture(scope="session")
def installed_extension() -> dict[str, object]:
    """The OpenFoal lab extension as installed, checked to be the tree's current build."""
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    listing = out.stdout + out.stderr
    line = next((ln for ln in listing.splitlines() if re.match(r"\s*openfoal\b", ln)), "")
    if "enabled" not in line or "OK" not in line:
        pytest.fail(f"openfoal is not an enabled lab extension (pip install -e .):\n{listing}")
    installed = Path(sys.prefix) / "share/jupyter/labextensions/openfoal/package.json"
    built = REPO / "openfoal_server_ext/labextension/package.json"
    data = json.loads(installed.read_text())
    if built.exists():
        # An editable install copies the build once: a later rebuild needs a reinstall.
        current = json.loads(built.read_text())["jupyterlab"]["_build"]["load"]
        if data["jupyterlab"]["_build"]["load"] != current:
            pytest.fail("the installed lab extension is older than the build: pip install -e .")
    return {"listing": line.strip(), "package": data}


@pytest.fixture(scope="session")
def scripted_model() -> Iterator[ScriptedModelServer]:
    """The scripted model server on loopback (real OpenAI streaming HTTP)."""
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> ScriptedModelServer:
    """The scripted model with no leftover replies; unscripted turns get an echo."""
    scripted_model.reset()
    return scripted_model


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
    installed_extension: dict[str, object],
) -> Iterator[LabServer]:
    """One JupyterLab per test module, wired to the scripted model."""
    server = LabServer(tmp_path_factory.mktemp("lab"), scripted_env(scripted_model))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_path: Path) -> Iterator[Browser]:
    """Headless Chromium from Debian; Playwright never downloads a browser here."""
    browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, for the failure screenshot."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser page; its console goes to test-artifacts/<test>.console.txt.

    A failed test also leaves test-artifacts/<test>.failure.png.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    lines: list[str] = []
    page.on("console", lambda msg: lines.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: lines.append(f"pageerror: {exc}"))
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{request.node.name}.console.txt").write_text("\n".join(lines))
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.failure.png"))
    context.close()
