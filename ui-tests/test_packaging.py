"""The wheel carries the prebuilt lab extension, so users need no Node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO

PREFIX = "openfoal-0.1.0.data/data/share/jupyter/labextensions/openfoal/"


def test_wheel_ships_the_lab_extension(tmp_path: Path) -> None:
    """`pip wheel` runs the jupyter-builder hook; the extension lands in shared data."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("openfoal-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = json.loads(zipfile.ZipFile(wheel).read(PREFIX + "package.json"))
    load = package["jupyterlab"]["_build"]["load"]
    assert PREFIX + load in names
    assert PREFIX + "static/style.js" in names
    assert PREFIX + "install.json" in names
    assert PREFIX + "schemas/openfoal/chat.json" in names
    install = json.loads(zipfile.ZipFile(wheel).read(PREFIX + "install.json"))
    assert install["packageName"] == "openfoal"
    # Only the built output ships: no TypeScript sources, no node_modules.
    assert not [n for n in names if n.endswith(".ts") or "node_modules" in n]
