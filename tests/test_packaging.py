"""The wheel carries templates/ and exercises/ and works outside the checkout (slow: builds a wheel)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_templates_and_runs_from_an_install(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel = next((tmp_path / "dist").glob("symreparam-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "symreparam/templates/solve.tex" in names
    assert "symreparam/templates/preamble.tex" in names
    assert any(n.startswith("symreparam/exercises/") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    # Run from an unrelated folder with only the installed copy on the path (plus the dependencies).
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import symreparam.resources as r, sys; p = r.bundled('templates'); "
            "print(p); sys.exit(0 if str(p).startswith(sys.argv[1]) else 1)")
    done = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-m", "symreparam", "solve", "--format", "latex"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
    assert "\\documentclass" in done.stdout
