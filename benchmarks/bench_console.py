"""The console on a large store: time from opening a panel (or applying a filter) to its first
rows in headless Chromium, beside the same page's REST call measured in the same run.

Store: a fresh DuckDB file seeded in bulk (``INSERT ... SELECT`` from ``range``, the trail of
``bench_audit``) with ``SESSIONS`` sessions, ``ENTRIES`` audit entries and ``GATES`` pending
gates, all owned by the server's user, then a real ``jupyter lab`` with OpenFoal on it.
Measured in the page (``performance.now()`` around the command and a wait for the first row
in the DOM): opening Audit (``audit.query``, first page), opening Approvals
(``policy-gate.list`` pending), and in Audit applying a session filter until the first row of
that session is shown, and opening Sessions (``sessions.list``, first page of 25).
Baseline: the same method and params over REST (``POST openfoal/api/<method>`` on one
kept-alive connection), timed from Python. Each is the median of ``ROUNDS`` rounds
(each panel closed and opened anew). Target: <= 500 ms for each panel time.

``OPENFOAL_BENCH_CONSOLE_ENTRIES`` and ``OPENFOAL_BENCH_CONSOLE_SESSIONS`` shrink the store
(defaults 1,000,000 and 100,000); ``OPENFOAL_BENCH_CONSOLE_ROUNDS`` sets the rounds (5).
"""

from __future__ import annotations

import getpass
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from openfoal_kernel.protocol import GateItem
from openfoal_server_ext.store import DuckDBStore

from . import bench_audit
from ._table import Row, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ui-tests"))
from labserver import LabServer

ENTRIES = int(os.environ.get("OPENFOAL_BENCH_CONSOLE_ENTRIES", "1000000"))
SESSIONS = int(os.environ.get("OPENFOAL_BENCH_CONSOLE_SESSIONS", "100000"))
ROUNDS = int(os.environ.get("OPENFOAL_BENCH_CONSOLE_ROUNDS", "5"))
GATES = 200
TARGET_MS = 500.0
CHROMIUM = "/usr/bin/chromium"
APPROVALS_ROW = "#openfoal-approvals .jp-OpenFoal-approvalsItem"

_SESSIONS = """
INSERT INTO sessions (id, owner, session_key, updated_at, data)
SELECT sid, $who, key, ts, json_object('id', sid, 'sessionKey', key, 'title', 'Session ' || i,
       'preview', 'sales_' || i % 97 || '.csv by month', 'owner', $who, 'status', 'idle',
       'runtimeMode', 'local', 'syncState', 'local_only', 'contextUsage', 0.0,
       'compactionCount', 0, 'memoryFlushState', 'idle',
       'createdAt', strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'),
       'updatedAt', strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'))
FROM (
    SELECT i, 'ses_b' || substr(md5('b' || i), 1, 23) AS sid,
           'workspace:default/agent:main/dm:jupyterlab:b' || i AS key,
           $start::TIMESTAMPTZ + to_microseconds((i * $step_us)::BIGINT) AS ts
    FROM range($count) t(i)
)
"""


def seed(path: Path, who: str) -> list[str]:
    """Fill the store in bulk; return the ids of sessions that have audit entries."""
    store = DuckDBStore(path)
    try:
        con = store.con
        bench_audit.ENTRIES = ENTRIES
        bench_audit.SESSIONS = max(1, min(SESSIONS, ENTRIES // 100))
        bench_audit.CONCURRENT = min(100, bench_audit.SESSIONS)
        bench_audit.OWNERS = 1
        sessions = bench_audit.fill(store)  # the trail of user0, and its sessions rows
        con.execute("SET threads = 2")
        con.execute("UPDATE audit SET owner = $who, actor = $who", {"who": who})
        con.execute(
            "UPDATE sessions SET owner = $who,"
            " data = json_merge_patch(data, json_object('owner', $who,"
            " 'sessionKey', session_key, 'title', 'Audited ' || id,"
            " 'createdAt', strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ'),"
            " 'updatedAt', strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')))",
            {"who": who},
        )
        now = datetime.now(timezone.utc)
        extra = SESSIONS - len(sessions)
        if extra > 0:
            con.execute(
                _SESSIONS,
                {
                    "who": who,
                    "count": extra,
                    "start": now - timedelta(days=30),
                    "step_us": timedelta(days=30) / timedelta(microseconds=1) / extra,
                },
            )
        con.execute("SET threads = 1")
        gates = [
            (
                GateItem(
                    gateId=f"gate_bench_{n:04d}",
                    sessionId=sessions[n % len(sessions)][0],
                    runId=f"run_bench_{n:04d}",
                    toolCallId=f"call_bench_{n:04d}",
                    toolName="bash.exec",
                    args={"command": f"pip install pandas==2.{n % 3}"},
                    argsFingerprint=f"fp{n}",
                    risk="shell command",
                    requestedBy=who,
                    createdAt=now - timedelta(seconds=n),
                ),
                who,
            )
            for n in range(GATES)
        ]
        store.upsert_gates(gates)
        con.execute("CHECKPOINT")
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()
            for t in ("sessions", "audit", "gate_items")
        }
        print(f"store: {counts}")
        return [s[0] for s in sessions]
    finally:
        store.close()


#: In the page: run a command, wait for a selector, answer the milliseconds in between.
_TIME_COMMAND = """async ([command, selector]) => {
  const app = window.jupyterapp;
  const t0 = performance.now();
  void app.commands.execute(command);
  while (!document.querySelector(selector)) {
    await new Promise(r => requestAnimationFrame(r));
  }
  return performance.now() - t0;
}"""

#: In the page: fill the Audit session filter, submit, wait for a row of that session.
_TIME_FILTER = """async (sid) => {
  const panel = document.querySelector('#openfoal-audit');
  const input = panel.querySelector('input[name="sessionId"]');
  input.value = sid;
  const t0 = performance.now();
  panel.querySelector('form').requestSubmit();
  const hit = () => {
    const cell = panel.querySelector('tbody tr:first-child td:nth-child(5)');
    return cell && cell.textContent === sid;
  };
  while (!hit()) {
    await new Promise(r => requestAnimationFrame(r));
  }
  return performance.now() - t0;
}"""


#: One kept-alive HTTP connection for the REST calls, as a page's own fetches would use.
_HTTP = httpx.Client(timeout=60)


#: The first row of the Sessions panel (25 a page, from ``sessions.list``).
SESSIONS_ROW = "#openfoal-sessions tbody tr"


def rest_ms(lab: LabServer, method: str, params: dict[str, Any]) -> float:
    """Milliseconds of one REST call (checked to answer rows)."""
    t = time.perf_counter()
    r = _HTTP.post(lab.url + f"openfoal/api/{method}", json=params, headers=lab.headers)
    ms = (time.perf_counter() - t) * 1000
    body = r.json()
    if not body.get("ok") or not body["payload"]["items"]:
        raise RuntimeError(f"{method} {params} answered {json.dumps(body)[:300]}")
    return ms


def close(page: Page, widget_id: str) -> None:
    """Close a main-area panel by its tab."""
    page.locator(f'.lm-TabBar-tab[data-id="{widget_id}"] .lm-TabBar-tabCloseIcon').click()
    page.locator(f"#{widget_id}").wait_for(state="detached", timeout=30_000)


def measure(lab: LabServer, sessions: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """Page and REST milliseconds per measured step."""
    rng = random.Random(7)
    out: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in ("Audit", "Approvals", "Audit filter", "Sessions")
    }
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(lab.lab_url)
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.commands", timeout=120_000
        )
        page.locator(".jp-LauncherCard").first.wait_for(timeout=120_000)
        # warm-up: load the panels' code once
        for command, selector, wid in [
            ("openfoal:open-audit", "#openfoal-audit tbody tr", "openfoal-audit"),
            ("openfoal:open-approvals", APPROVALS_ROW, "openfoal-approvals"),
            ("openfoal:open-sessions", SESSIONS_ROW, "openfoal-sessions"),
        ]:
            page.evaluate(_TIME_COMMAND, [command, selector])
            close(page, wid)
        for _ in range(ROUNDS):
            out["Audit"][0].append(
                page.evaluate(_TIME_COMMAND, ["openfoal:open-audit", "#openfoal-audit tbody tr"])
            )
            out["Audit"][1].append(rest_ms(lab, "audit.query", {"limit": 50}))
            sid = rng.choice(sessions)
            out["Audit filter"][0].append(page.evaluate(_TIME_FILTER, sid))
            out["Audit filter"][1].append(
                rest_ms(lab, "audit.query", {"sessionId": sid, "limit": 50})
            )
            close(page, "openfoal-audit")
            out["Approvals"][0].append(
                page.evaluate(
                    _TIME_COMMAND,
                    ["openfoal:open-approvals", APPROVALS_ROW],
                )
            )
            out["Approvals"][1].append(rest_ms(lab, "policy-gate.list", {"status": "pending"}))
            close(page, "openfoal-approvals")
            out["Sessions"][0].append(
                page.evaluate(_TIME_COMMAND, ["openfoal:open-sessions", SESSIONS_ROW])
            )
            out["Sessions"][1].append(rest_ms(lab, "sessions.list", {"limit": 25}))
            close(page, "openfoal-sessions")
        browser.close()
    return out


def main() -> bool:
    """Seed, start JupyterLab, measure, print the table; True when every target is met."""
    who = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    with tempfile.TemporaryDirectory(prefix="openfoal-bench-console-") as tmp:
        base = Path(tmp)
        db = base / "root" / ".openfoal" / "openfoal.duckdb"
        db.parent.mkdir(parents=True)
        started = time.perf_counter()
        sessions = seed(db, who)
        print(f"seeded in {time.perf_counter() - started:.1f} s")
        config = base / "config"
        config.mkdir()
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"LabApp": {"expose_app_in_browser": True}})
        )
        lab = LabServer(base, {"OPENFOAL_MODEL": "demo"})
        lab.start(timeout=300)
        try:
            results = measure(lab, sessions)
        finally:
            lab.stop()
    rows = []
    for name, (page_ms, rest) in results.items():
        rest_med = statistics.median(rest)
        if page_ms:
            med = statistics.median(page_ms)
            rows.append(
                Row(
                    metric=f"{name}: to first row (page, median of {len(page_ms)})",
                    value=f"{med:.0f} ms",
                    baseline=f"REST {rest_med:.0f} ms ({med / rest_med:.1f}x)",
                    target=f"<= {TARGET_MS:g} ms",
                    ok=med <= TARGET_MS,
                )
            )
        else:
            rows.append(
                Row(
                    metric=f"{name}: REST only (no page timing)",
                    value=f"{rest_med:.0f} ms",
                    baseline="-",
                    target=f"<= {TARGET_MS:g} ms",
                    ok=rest_med <= TARGET_MS,
                )
            )
    return print_table(f"Console on {SESSIONS:,} sessions and {ENTRIES:,} audit entries", rows)
