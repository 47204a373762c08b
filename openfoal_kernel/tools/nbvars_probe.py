"""The code ``notebook.variables`` runs in the bound notebook kernel (stdlib only there).

It reads the user namespace without copying data: ``.shape``/``.dtypes`` for frames and
arrays, ``len`` for sized values, a bounded ``reprlib`` repr; each repr (and ``len``) runs
under a ``SIGALRM`` timer, so one that hangs gives a note instead of stalling the listing.
pandas and numpy are looked up in ``sys.modules`` only: never imported by the probe.
It prints one line, ``MARKER`` followed by JSON, and leaves no names behind.
"""

from __future__ import annotations

import json
from typing import Any

#: Prefix of the probe's one output line.
MARKER = "@@openfoal-vars@@"

_PROBE = r"""
def __openfoal_vars(cfg):
    import json, reprlib, signal, sys, threading, types, re
    ip = get_ipython()
    ns, hidden = ip.user_ns, getattr(ip, "user_ns_hidden", {})
    norm = re.compile(r"[^a-z0-9]")
    def secret(name):
        n = norm.sub("", name.lower())
        return n in cfg["secretNames"] or n.endswith(tuple(cfg["secretSuffixes"]))
    class _Slow(BaseException):  # not an Exception: reprlib and user code cannot swallow it
        pass
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    def guarded(fn):
        if not main:
            return fn()
        def on_alarm(signum, frame):
            raise _Slow()
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, cfg["reprTimeoutS"])
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    def note(exc):
        if isinstance(exc, _Slow):
            return "repr timed out after %gs" % cfg["reprTimeoutS"]
        return "repr raised %s: %s" % (type(exc).__name__, str(exc)[:200])
    limit = cfg["reprChars"]
    rp = reprlib.Repr()
    rp.maxstring = rp.maxother = rp.maxlong = limit
    rp.maxlist = rp.maxtuple = rp.maxset = rp.maxfrozenset = rp.maxdeque = rp.maxarray = 10
    rp.maxdict = 10
    rp.maxlevel = 3
    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    skip = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)
    wanted = cfg["names"]
    if wanted is None:
        names = [k for k in ns if not k.startswith("_") and k not in hidden
                 and not isinstance(ns[k], skip)]
    else:
        names = [k for k in wanted if k in ns]
    missing = [k for k in (wanted or []) if k not in ns]
    total = len(names)
    out = []
    for name in sorted(names)[: cfg["maxVars"]]:
        v = ns[name]
        t = type(v)
        item = {"name": name, "type": "%s.%s" % (t.__module__, t.__qualname__)}
        out.append(item)
        if secret(name):
            item["secret"] = True
            continue
        try:
            if pd is not None and isinstance(v, (pd.DataFrame, pd.Series)):
                item["shape"] = list(v.shape)
                if isinstance(v, pd.DataFrame):
                    dt = v.dtypes
                    item["dtypes"] = {str(c): str(dt.iloc[i]) for i, c in
                                      enumerate(v.columns[: cfg["maxColumns"]])}
                    item["columns"] = len(v.columns)
                else:
                    item["dtype"] = str(v.dtype)
                rows = cfg["previewRows"]
                if rows > 0:
                    item["preview"] = guarded(lambda: v.head(rows).to_string(
                        max_cols=cfg["maxColumns"], max_colwidth=40))[: limit * 10]
                    item["previewRows"] = min(rows, len(v))
                continue
            if np is not None and isinstance(v, np.ndarray):
                item["shape"] = list(v.shape)
                item["dtype"] = str(v.dtype)
                if v.size <= 20:
                    item["repr"] = guarded(lambda: repr(v))[:limit]
                continue
            if isinstance(v, (str, bytes, list, tuple, dict, set, frozenset)) or (
                hasattr(t, "__len__") and hasattr(t, "__getitem__")):
                try:
                    item["length"] = guarded(lambda: len(v))
                except Exception:
                    pass
            plain = (str, bytes, list, tuple, dict, set, frozenset, int, float, complex)
            show = rp.repr if type(v) in plain else repr  # reprlib hides a failing repr
            item["repr"] = guarded(lambda: show(v))[:limit]
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            item["note"] = note(exc)
    print(MARKER + json.dumps({"variables": out, "total": total, "missing": missing}))
try:
    __openfoal_vars(CFG)
finally:
    del __openfoal_vars
"""


def probe_code(
    *,
    names: list[str] | None,
    preview_rows: int,
    repr_chars: int,
    repr_timeout_s: float,
    max_vars: int,
    max_columns: int,
    secret_names: frozenset[str],
    secret_suffixes: tuple[str, ...],
) -> str:
    """The cell that lists the kernel's variables (all, or ``names``)."""
    cfg: dict[str, Any] = {
        "names": names,
        "previewRows": preview_rows,
        "reprChars": repr_chars,
        "reprTimeoutS": repr_timeout_s,
        "maxVars": max_vars,
        "maxColumns": max_columns,
        "secretNames": sorted(secret_names),
        "secretSuffixes": list(secret_suffixes),
    }
    loads = f"__import__('json').loads({json.dumps(cfg)!r})"
    return _PROBE.replace("MARKER", json.dumps(MARKER)).replace("CFG", loads)
