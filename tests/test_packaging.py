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
    for folder in ("templates", "exercises"):  # every bundled file, and nothing else
        bundled = {f"symreparam/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                   for p in (ROOT / folder).rglob("*") if p.is_file() and p.name != ".keep"}
        shipped = {n for n in names if n.startswith(f"symreparam/{folder}/") and not n.endswith("/.keep")}
        assert shipped == bundled, folder
    assert "symreparam/templates/moodle.xml" in names and "symreparam/exercises/reparam-one-step.toml" in names
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
    done = subprocess.run([sys.executable, "-m", "symreparam", "generate", "stability", "-n", "2", "--format",
                           "tex,md,json,moodle", "--out", "hw", "-q"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert {"sheet-1.tex", "key-2.md", "quiz.xml", "manifest.json"} <= {p.name for p in (tmp_path / "hw").iterdir()}
    done = subprocess.run([sys.executable, "-m", "symreparam", "check", "--answer", "w1=2.4"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "1 of 1 correct" in done.stdout
