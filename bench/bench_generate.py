"""Benchmark of `symreparam generate` against a naive per-variant SymPy script (issue: the generator).

Both sides are timed as whole commands, interleaved in one run, at two sizes, so that start-up
(importing SymPy, deriving the family once) separates from the cost of each further variant:

    per-variant cost = (time for N variants - time for 1 variant) / (N - 1)

The two sizes of one command run back to back in every round, and the per-variant cost is the median
over rounds of that round's difference: the machine's speed drifts from minute to minute, and a
difference of two neighbouring runs cancels most of the drift that a difference of two medians keeps.

Target: symreparam at least 50x faster per variant than the naive script, which re-derives every
variant with SymPy (diff, subs, expand, eigenvalues, latex) and renders one template
(bench/naive_generate.py). The target is judged on wall-clock time, what a user waits for: the naive
script is one process, and symreparam renders runs of 1000 variants or more in one forked process
per core. CPU time (user + system, worker processes included) is printed as well, to show what the
second core buys; so is the whole command with start-up. Commands are interleaved and medians taken,
because on shared virtual machines the same command swings by 40% from one minute to the next.

    python bench/bench_generate.py [--rounds 3] [--variants 1000] [--naive 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from timing import PYTHON, ROOT, precompile, time_commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=100, help="variants for the (slow) naive script")
    args = parser.parse_args()
    precompile()
    naive = str(ROOT / "bench" / "naive_generate.py")
    # Both sides write their files to tmpfs when there is one: on this kind of virtual machine the
    # latency of creating a file on disk swings between 20 and 300 us from one minute to the next,
    # which would measure the disk, not the programs.
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    print(f"writing output under {scratch or tempfile.gettempdir()}")
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        def ours(n: int) -> list[str]:
            return [PYTHON, "-m", "symreparam", "generate", "reparam-one-step", "--variants", str(n), "--seed", "1",
                    "--format", "tex,json", "--out", f"{tmp}/ours-{n}", "--force", "--quiet"]

        commands = {
            f"symreparam generate, {args.variants} variants": ours(args.variants),
            "symreparam generate, 1 variant": ours(1),
            f"naive script, {args.naive} variants": [PYTHON, naive, str(args.naive), f"{tmp}/naive-{args.naive}"],
            "naive script, 1 variant": [PYTHON, naive, "1", f"{tmp}/naive-1"],
        }
        cpu: dict[str, list[float]] = {}
        runs = time_commands(commands, args.rounds, cpu=cpu)
    ok = True
    for label, measured in (("CPU time (user + system)", cpu), ("wall-clock time", runs)):
        ours_big = measured[f"symreparam generate, {args.variants} variants"]
        ours_one = measured["symreparam generate, 1 variant"]
        naive_big, naive_one = measured[f"naive script, {args.naive} variants"], measured["naive script, 1 variant"]
        ours = [(big - one) / (args.variants - 1) for big, one in zip(ours_big, ours_one)]
        naive = [(big - one) / (args.naive - 1) for big, one in zip(naive_big, naive_one)]
        ours_each, naive_each = statistics.median(ours), statistics.median(naive)
        ratio = naive_each / ours_each
        rounds = sorted(n / o for n, o in zip(naive, ours))
        print(f"\n{label}, medians of {args.rounds}:")
        for name, values in measured.items():
            print(f"  {name:40s} {statistics.median(values):8.3f} s")
        print(f"  per variant (median of the rounds' differences): symreparam {1000 * ours_each:.3f} ms, "
              f"naive {1000 * naive_each:.2f} ms")
        verdict = f" (target >= 50x: {'met' if ratio >= 50 else 'MISSED'})" if label.startswith("wall") else ""
        print(f"  per-variant ratio: {ratio:.0f}x faster{verdict}; "
              f"single rounds from {rounds[0]:.0f}x to {rounds[-1]:.0f}x")
        ours_n, naive_1 = statistics.median(ours_big), statistics.median(naive_one)
        whole = (naive_each * args.variants + naive_1) / ours_n
        print(f"  whole command for {args.variants} variants, start-up included: {ours_n:.2f} s vs about "
              f"{naive_each * args.variants + naive_1:.1f} s for the naive script ({whole:.0f}x)")
        if label.startswith("wall"):
            ok = ratio >= 50
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
