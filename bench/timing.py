"""Shared helpers for the benchmarks: interleaved wall-clock timing of whole commands.

The machines this runs on are noisy, so commands are timed in alternation within one run and only
ratios of medians between them are reported; an absolute time means little from run to run.
"""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The baseline every start-up target is a ratio of, and the floor: what any SymPy+NumPy+click tool pays
# before doing anything (the first Add imports sympy.tensor and sympy.combinatorics);
# OPENBLAS_NUM_THREADS=1 as the CLI sets it.
BASELINE = "python -c 'import sympy'"
STARTUP = {
    BASELINE: [PYTHON, "-c", "import sympy"],
    "floor: import sympy, numpy, click; x + 1": [PYTHON, "-c", "import os; os.environ['OPENBLAS_NUM_THREADS']"
                                                 "='1'; import sympy, numpy, click; sympy.Symbol('x') + 1"],
}


def precompile() -> None:
    """Compile the package to bytecode, as ``pip install`` does, so a checkout is timed like an install.

    With PYTHONDONTWRITEBYTECODE=1 Python would otherwise re-compile every module on every run.
    """
    import symreparam

    compileall.compile_dir(str(Path(symreparam.__file__).parent), quiet=1)


def time_commands(commands: dict[str, list[str]], rounds: int, env: dict | None = None,
                  ok_codes: tuple[int, ...] = (0,), cpu: dict | None = None) -> dict[str, list[float]]:
    """Run each command ``rounds`` times, interleaved, and return the wall-clock seconds of each run.

    ``ok_codes`` are the exit codes that count as success (``check`` exits 1 when an answer is wrong).
    With ``cpu`` (a dict), the CPU seconds (user + system) of each run are collected there too.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault("PYTHONPATH", str(ROOT))
    for name, cmd in commands.items():  # warm the page cache and fail early on a broken command
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if done.returncode not in ok_codes:
            raise SystemExit(f"{name}: {' '.join(cmd)} failed:\n{done.stderr.decode()}")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            times[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if cpu is not None:
                cpu.setdefault(name, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode not in ok_codes:
                raise SystemExit(f"{name}: exited with {done.returncode}")
    return times


def report(times: dict[str, list[float]], baseline: str, targets: dict[str, float]) -> bool:
    """Print median, min and the ratio of medians to ``baseline``; True when every target is met."""
    base = statistics.median(times[baseline])
    ok = True
    print(f"{'command':44s} {'median s':>9s} {'min s':>7s} {'ratio':>6s}  target")
    for name, values in times.items():
        ratio = statistics.median(values) / base
        target = targets.get(name)
        verdict = "" if target is None else (f"<= {target:g}x  " + ("met" if ratio <= target else "MISSED"))
        ok &= target is None or ratio <= target
        print(f"{name:44s} {statistics.median(values):9.3f} {min(values):7.3f} {ratio:6.2f}  {verdict}")
    return ok
