"""Benchmark of `symreparam solve` against `python -c "import sympy"` (issue: the exact engine).

Targets, as ratios of medians measured in one run:
  * the reference exercise within 1.5x of importing SymPy;
  * an exact problem with 10 parameters, 30 data points and 200 steps within 3x.

    python bench/bench_solve.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from timing import BASELINE, PYTHON, STARTUP, precompile, report, time_commands


def big_problem(path: Path, seed: int = 0) -> None:
    """10 parameters mixed pairwise (a non-diagonal A), 10 inputs, 30 points, 200 steps, exact lr 1/20."""
    rng = random.Random(seed)
    terms = [f"(w{j} + w{j % 10 + 1})*x{j}" for j in range(1, 11)]
    lines = [f'models = ["{" + ".join(terms)}"]', 'lr = "1/20"', "steps = 200", 'loss = "mse"', "", "[init]"]
    lines += [f"w{j} = {rng.randint(-3, 3)}" for j in range(1, 11)]
    for _ in range(30):
        point = ", ".join(f"x{j} = {rng.randint(-2, 2)}" for j in range(1, 11))
        lines += ["", "[[data]]", point.replace(", ", "\n"), f"y = {rng.randint(-5, 5)}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    precompile()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.toml"
        big_problem(big)
        commands = {
            **STARTUP,
            "symreparam solve (reference)": [PYTHON, "-m", "symreparam", "solve"],
            "symreparam solve big.toml (10 w, 30 points, 200 steps)": [PYTHON, "-m", "symreparam", "solve", str(big)],
        }
        times = time_commands(commands, args.rounds)
    ok = report(times, BASELINE, {
        "symreparam solve (reference)": 1.5,
        "symreparam solve big.toml (10 w, 30 points, 200 steps)": 3.0,
    })
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
