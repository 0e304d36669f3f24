"""Real pdflatex compiles of the documents `solve` writes (slow: marked, run by CI)."""

from __future__ import annotations

import pytest

from symreparam import solve
from symreparam.errors import SymreparamError
from symreparam.pdf import compile_pdf, log_excerpt
from symreparam.problem import reference_problem
from symreparam.render import render

CASES = {
    "reference": lambda: solve(),
    "symbolic-lr-3-steps": lambda: solve(reference_problem(lr="eta", steps=3)),
    "multi-input-nonlinear": lambda: solve(models=["exp(2*s)*x1 + t*x2", "a_1*x1 + a_2*x2"],
                                           init=["s=0", "t=1", "a_1=1", "a_2=1"],
                                           data=["x1=1,x2=2,y=3", "x1=2,x2=1,y=1"], lr="1/10", steps=2),
    "many-points": lambda: solve(models=["w1*x + w2"], init=["w1=0", "w2=0"],
                                 data=[f"x={i},y={2 * i + 1}" for i in range(9)], lr="1/1000", steps=20),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_solve_latex_compiles(case):
    pdf = compile_pdf(render(CASES[case](), "latex"), case)
    assert pdf.startswith(b"%PDF")


@pytest.mark.slow
def test_latex_errors_show_the_log_lines():
    with pytest.raises(SymreparamError, match=r"Undefined control sequence"):
        compile_pdf("\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}", "broken")


def test_log_excerpt_picks_error_lines():
    log = "ok\nok\n! Undefined control sequence.\nl.3 \\nosuch\nmore\n"
    assert log_excerpt(log).startswith("! Undefined control sequence.\nl.3 \\nosuch")
