"""Benchmark of `symreparam check` against `python -c "import sympy"` (issue: the answer checker).

Target, as a ratio of medians measured in one run: checking answers to the reference exercise within
1.5x of importing SymPy. The answers include a right one, two that typical mistakes explain and one
that follows from an earlier wrong answer, so every part of the checker runs (parsing, exact
comparison, the mistakes' paths, errors carried forward, both float64 checks).

    python bench/bench_check.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import sys

from timing import BASELINE, PYTHON, STARTUP, precompile, report, time_commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    precompile()
    answers = ["w1=2.4", "w3=1.5", "slope2=15", "f2=15x + 2.2"]
    commands = {
        **STARTUP,
        "symreparam check (reference, 4 answers)": [PYTHON, "-m", "symreparam", "check",
                                                    *[x for a in answers for x in ("--answer", a)]],
    }
    times = time_commands(commands, args.rounds, ok_codes=(0, 1))
    ok = report(times, BASELINE, {"symreparam check (reference, 4 answers)": 1.5})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
