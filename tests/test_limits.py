"""The README's "Limits and refusals" states the limits the code enforces: each constant is quoted
there, and each example the section gives is refused (or stopped) with the message it quotes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_robustness import one_error_line

from symreparam import check, derive, files, generate, parse, problem

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SECTION = README[README.index("## Limits and refusals"):README.index("## Python API")]


def _stated(text: str) -> bool:
    return text in SECTION


@pytest.mark.parametrize("value, wording", [
    (derive.MAX_ITERATE_OPS, "at most {} operations"),
    (derive.MAX_NUMBER_BITS, "at most {} bits (about 3900 digits)"),
    (derive.MAX_ITERATE_BITS, "at most {} bits in all"),
    (parse.Limits().max_scientific_exponent, "from -{0} to {0}"),
    (parse.Limits().max_literal_chars, "{} characters (digits, point and exponent)"),
    (problem.MAX_MODELS, "at most {} models"),
    (problem.MAX_PARAMS, "{} parameters a model"),
    (problem.MAX_POINTS, "{} data points"),
    (problem.MAX_STEPS, "from 1 to {}"),
    (problem.MAX_MODEL_TERMS, "at most {} terms multiplied out"),
    (check.MAX_ANSWERS, "at most {} a run"),
    (check.MAX_EXPANDED_TERMS, "at most {} terms multiplied out"),
    (generate.MAX_ATTEMPTS, "within {} draws"),
    (generate.MAX_VARIANTS, "from 1 to {}"),
])
def test_each_limit_is_stated_with_its_value(value, wording):
    text = wording.format(value)
    assert _stated(text), f"README's limits section does not say {text!r}"


def test_the_file_size_limit_is_stated():
    assert _stated(f"{files.MAX_INPUT_BYTES:,} bytes")


@pytest.mark.parametrize("args, message", [
    (["solve", "--lr", "0"], "--lr: the learning rate must be positive, got 0"),
    (["solve", "--lr", "-0.1"], "--lr: the learning rate must be positive, got -1/10"),
    (["solve", "--lr", "1e-51"], "out of range (limit -50 to 50)"),
    (["solve", "--lr", "1e51"], "out of range (limit -50 to 50)"),
    (["solve", "--init", "w1=" + "1" * 41], "too long (limit 40 characters)"),
    (["solve", "--lr", "1/3", "--steps", "1000"], "--steps: the exact parameters of f2 after step 981"),
    (["solve", "--model", "exp(s)*x + t", "--init", "s=0", "--init", "t=0", "--data", "x=1,y=2", "--steps", "10"],
     "limit 600; it is not linear in its parameters); use at most 4 steps"),
    (["solve", "--model", "(a+b+c+d+g+h)**10*x", *[f"--init={n}=1" for n in "abcdgh"]], "more than 2000 terms"),
])
def test_the_examples_of_the_section_are_refused_as_it_says(args, message):
    assert message in one_error_line(*args)


def test_at_step_one_the_size_budget_names_what_to_change():
    # one step of two sigmoids on four points already exceeds the budget: the rate is numeric, so the
    # fix is the data or the model, not "a numeric learning rate" or fewer than one step
    line = one_error_line("solve", "--model", "sigmoid(a*x+b)*c + sigmoid(d*x+g)*h",
                          *[f"--init={n}={v}" for n, v in zip("abcdgh", "121111")],
                          *[f"--data=x={x},y={y}" for x, y in ((1, 1), (2, 3), (3, 1), (4, 0))], "--lr", "1/10")
    assert line.startswith("Error: --data: the exact iterates of f1 grow too large to be useful after step 1 (")
    assert re.search(r"\(\d+ operations, limit 600;", line) and line.endswith("use fewer data points or a simpler model")
