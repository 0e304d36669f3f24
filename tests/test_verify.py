"""The float64 check must catch wrong exact answers, and its evaluator must be right on its own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp
from conftest import R, S

from symreparam import solve
from symreparam.derive import Stability, derive_model
from symreparam.errors import VerificationError
from symreparam.numeric import compile_model, exact_float
from symreparam.problem import reference_problem
from symreparam.reparam import common_basis, coefficients, reparameterisation
from symreparam.verify import verify_model


def _verify(problem, derivation):
    inputs = problem.data.input_symbols
    basis = common_basis([derivation.function_initial, derivation.function_final,
                          *derivation.form.features, derivation.form.offset], inputs)
    reparam = reparameterisation(derivation.form, basis, inputs)
    coeffs = (coefficients(derivation.function_initial, basis, inputs),
              coefficients(derivation.function_final, basis, inputs))
    return verify_model(problem, derivation, reparam, basis, coeffs)


def _tamper(field, value):
    problem = reference_problem(steps=2)
    d = derive_model(problem, problem.models[1])
    return problem, dataclasses.replace(d, **{field: value(d)})


@pytest.mark.parametrize("field, wrong", [
    ("trajectory", lambda d: d.trajectory[:2] + ((d.trajectory[2][0] * (1 + R(1, 10**6)), d.trajectory[2][1]),)),
    ("trajectory", lambda d: (d.trajectory[0], (R(14), R(11, 5)), d.trajectory[2])),  # chain-rule factor lost
    ("gram", lambda d: sp.ImmutableMatrix([[4900]])),
    ("kernel", lambda d: (700 * S("x"),)),
    ("gradient", lambda d: (R(-14), R(-2))),
    ("limit", lambda d: (d.limit[0] + R(1, 10**5), d.limit[1])),
    ("stability", lambda d: Stability(d.stability.lambda_max, R(1, 4900), "diverges")),
    ("function_final", lambda d: sp.expand(d.function_final * (1 + R(1, 10**6)))),
    ("function_step", lambda d: d.function_step + S("x") / 1000),
    ("residuals", lambda d: (R(1),)),
])
def test_wrong_answers_are_caught(field, wrong):
    problem, tampered = _tamper(field, wrong)
    with pytest.raises(VerificationError, match="disagrees"):
        _verify(problem, tampered)


def test_untampered_passes_with_tiny_error():
    problem = reference_problem(steps=2)
    d = derive_model(problem, problem.models[1])
    assert _verify(problem, d).max_rel_error < 1e-14


x, a, b = S("x"), S("a"), S("b")


@pytest.mark.parametrize("expr", [
    a * x + b, sp.exp(2 * a) * x + b, sp.log(a**2 + 1) * x, sp.sin(a * x) + sp.cos(b),
    sp.tanh(a - b) * x, sp.Abs(a - 1) * x, sp.sqrt(a**2 + b**2 + 1), x**a + b, 1 / (1 + sp.exp(-a * x)),
    (a + b) ** 3 * x**2,
])
def test_forward_mode_matches_central_differences(expr):
    model = compile_model(expr, (x,), (a, b))
    xs = np.array([[0.5], [1.5], [2.0]])
    w = np.array([0.3, -0.7])
    value, jac = model(xs, w)
    # value against SymPy's own evaluation, derivatives against finite differences
    for i, xi in enumerate(xs[:, 0]):
        exact = float(expr.subs({x: xi, a: w[0], b: w[1]}))
        assert value[i] == pytest.approx(exact, rel=1e-12)
    h = 1e-6
    for j in range(2):
        up, down = w.copy(), w.copy()
        up[j] += h
        down[j] -= h
        numeric = (model(xs, up)[0] - model(xs, down)[0]) / (2 * h)
        assert np.allclose(jac[:, j], numeric, rtol=1e-6, atol=1e-8)


def test_exact_float_is_correctly_rounded_and_handles_huge():
    assert exact_float(R(1, 10)) == 0.1
    assert exact_float(sp.Integer(10) ** 400) == float("inf")
    assert exact_float(sp.sqrt(2)) == pytest.approx(2**0.5, rel=1e-16)


def test_solution_renders_in_jupyter():
    latex = solve()._repr_latex_()
    assert latex.startswith("$") and "141 x" in latex and "\\frac{12 x}{5}" in latex


@pytest.mark.parametrize("family_name, key", [
    ("multi-step", "f2.margin.2"),
    ("multi-step", "f1.M.w1.w2"),
    ("multi-step", "f2.v.w3"),
    ("multi-step", "f2.coef.2.slope"),
    ("newton-invariance", "f2.H.w3.w3"),
    ("newton-invariance", "f1.newton_move.w2"),
    ("reparam-one-step", "f2.w3.1"),
    ("reparam-one-step", "ratio.f2.slope"),
])
def test_generator_check_catches_a_wrong_answer(family_name, key):
    """Every answer key a template can show is re-computed in float64: one wrong value fails its variant."""
    from dataclasses import replace as dc_replace

    from symreparam import family
    from symreparam.exactvec import Values
    from symreparam.generate import Request, solve_variants
    from symreparam.program import verify_batch

    fam = family.load(family.find(family_name))
    (accepted,) = solve_variants(Request(family=fam, variants=1, seed="2"))
    batch = accepted.batch
    assert verify_batch(batch)[0] < 1e-12
    good = batch.values[key]
    wrong = Values(good.num + good.den, good.den)  # off by exactly one
    tampered = dc_replace(batch, values={**batch.values, key: wrong})
    assert verify_batch(tampered)[0] > 1e-6
