"""Exact zeros against float64 noise, and the behaviour of this run (issue: right answers withheld when
the exact gradient is zero; behaviour labelled from lambda_max alone).

Expected values are derived by hand in the comments; the properties iterate gradient descent exactly
with Python's Fraction, independently of SymPy and of the engine's closed forms.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from conftest import R, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symreparam import solve
from symreparam.derive import derive_model
from symreparam.errors import VerificationError
from symreparam.problem import build_problem

FITTED = ["--model", "w*x", "--init", "w=0.1", "--data", "x=3,y=0.3"]
FITTED_LINE = ["--model", "w1*x + w2", "--init", "w1=0.1", "--init", "w2=0.2", "--data", "x=1,y=0.3"]
OPTIMUM = ["--model", "w*x", "--init", "w=0.8", "--data", "x=0.1,y=0.2", "--data", "x=0.2,y=0.1"]
UNEXCITED = ["--model", "w1*x + w2", "--init", "w1=0", "--init", "w2=0", "--data", "x=-1,y=-1", "--data", "x=1,y=1",
             "--data", "x=0,y=0", "--lr", "6/5", "--steps", "30"]


def _json(args):
    return json.loads(run("solve", *args, "--format", "json").output)["models"][0]


# --- 1. a zero exact value is not a float64 mismatch -------------------------------------------------------


def test_a_start_that_fits_the_data_stays_put():
    # f(3) = 0.1 * 3 = 0.3 = y exactly, so r = 0, the gradient is 0 and w stays at 1/10 at any rate.
    m = _json(FITTED)
    assert m["gradient_initial"] == {"w": "0"}
    assert m["trajectory"] == [{"w": "1/10"}, {"w": "1/10"}]
    assert m["lr_behaviour"] == "stays put"
    assert m["max_stable_lr"] == "1/9"  # H = 2 * 3^2 = 18 for every start
    assert m["max_stable_lr_from_start"] == "oo" and m["top_direction_excited"] is False
    assert m["limit"] == {"w": "1/10"} and m["limit_reached"] is True
    assert "stays put" in run("solve", *FITTED).output


def test_a_line_that_fits_its_point_stays_put():
    # f(1) = 0.1 + 0.2 = 0.3 = y: both partial derivatives see r = 0.
    m = _json(FITTED_LINE)
    assert m["gradient_initial"] == {"w1": "0", "w2": "0"}
    assert m["params"] == {"w1": {"initial": "1/10", "final": "1/10"}, "w2": {"initial": "1/5", "final": "1/5"}}
    assert m["lr_behaviour"] == "stays put" and m["limit_reached"] is True


def test_a_start_at_the_least_squares_optimum_stays_there():
    # w* = sum x y / sum x^2 = (0.02 + 0.02) / (0.01 + 0.04) = 4/5 = w0: residuals (-0.12, 0.06) are not
    # zero, but the gradient 2/2 * (0.1 * -0.12 + 0.2 * 0.06) = 0 is.
    m = _json(OPTIMUM)
    assert m["gradient_initial"] == {"w": "0"}
    assert m["trajectory"] == [{"w": "4/5"}, {"w": "4/5"}]
    assert m["limit"] == {"w": "4/5"} and m["limit_reached"] is True
    assert m["lr_behaviour"] == "stays put"
    assert m["max_stable_lr"] == "40"  # H = (2/2) * (0.01 + 0.04) = 1/20


@pytest.mark.parametrize("args", [FITTED, FITTED_LINE, OPTIMUM])
def test_check_accepts_answers_on_problems_with_a_zero_gradient(args):
    names = {"w*x": ["w"], "w1*x + w2": ["w1", "w2"]}[args[1]]
    start = {a.split("=")[0]: a.split("=")[1] for a in args[3::2] if "=" in a and not a.startswith("x=")}
    answers = [f"--answer={w}={start[w]}" for w in names]
    result = run("check", *args, *answers)
    assert "correct" in result.output and "not correct" not in result.output


def _fitted(field, wrong):
    problem = build_problem(models=["w*x"], init=["w=0.1"], data=["x=3,y=0.3"], lr="1/10", steps=2)
    d = derive_model(problem, problem.models[0])
    return problem, dataclasses.replace(d, **{field: wrong(d)})


@pytest.mark.parametrize("field, wrong", [
    # each exact value is 0 or unchanged; the tampered one is off by a millionth of the terms' size
    ("gradient", lambda d: (R(1, 10**6),)),
    ("residuals", lambda d: (R(1, 10**6),)),
    ("trajectory", lambda d: (d.trajectory[0], d.trajectory[1], (R(1, 10) + R(1, 10**7),))),
    ("function_final", lambda d: d.function_final + R(1, 10**7) * sp.Symbol("x", real=True)),
    ("limit", lambda d: (R(1, 10) + R(1, 10**7),)),
    ("newton", lambda d: (R(1, 10) - R(1, 10**7),)),
])
def test_a_wrong_answer_near_an_exact_zero_is_still_caught(field, wrong):
    from test_verify import _verify

    problem, tampered = _fitted(field, wrong)
    _verify(problem, derive_model(problem, problem.models[0]))  # untampered: passes
    with pytest.raises(VerificationError, match="disagrees"):
        _verify(problem, tampered)


def test_the_scale_of_a_cancelled_value_is_the_size_of_its_terms():
    from symreparam.numeric import compile_model

    w1, w2, x = sp.symbols("w1 w2 x")
    model = compile_model(w1 * x + w2, (x,), (w1, w2))
    at = model.evaluate(np.array([[3.0]]), np.array([0.1, -0.3]))
    assert at.value[0] != 0 and abs(at.value[0]) < 1e-16  # 0.1 * 3 - 0.3 in float64
    assert at.size[0] == pytest.approx(0.6)  # |0.1 * 3| + |-0.3|
    assert at.jacobian_size.tolist() == [[3.0, 1.0]]


def test_a_generated_variant_with_a_mistake_worth_exactly_zero_is_not_redrawn():
    """general-linear-reparam, seed 1, variant 30, first draw: one typical mistake's answer is exactly 0
    and was compared with float64's 1e-16 at relative error 1, so the variant was thrown away."""
    from symreparam import family
    from symreparam.generate import Request, solve_variants
    from symreparam.program import evaluate_program, verify_batch

    fam = family.load(family.find("general-linear-reparam"))
    accepted = solve_variants(Request(family=fam, variants=30, seed="1"))
    slot = accepted[29]
    assert slot.attempts == 1
    batch = evaluate_program(slot.batch.program, [fam.draw("1", slot.ident, 1)])
    assert verify_batch(batch)[0] < 1e-9  # it was 1.0


# --- 2. the behaviour of this run ---------------------------------------------------------------------


def test_a_start_that_misses_the_top_direction_converges_above_the_global_limit():
    # J rows (x, 1) at x = -1, 1, 0; J^T J = diag(2, 3); H = (2/3) J^T J = diag(4/3, 2): lambda_max = 2, so
    # every start converges iff lr < 1. From w = 0, r0 = (1, -1, 0), J^T r0 = (-2, 0): only the slope
    # direction (4/3) is excited, so this run converges iff lr < 3/2, and at 6/5 (> 3/4) it oscillates
    # in: w1_t - 1 = (1 - 6/5 * 4/3)^t (0 - 1) = -(-3/5)^t, w2 stays 0.
    m = _json(UNEXCITED)
    assert m["max_stable_lr"] == "1"
    assert m["lr_behaviour"] == "converges, oscillating"
    assert m["max_stable_lr_from_start"] == "3/2" and m["top_direction_excited"] is False
    assert m["limit"] == {"w1": "1", "w2": "0"} and m["limit_reached"] is True
    for t, step in enumerate(m["trajectory"]):
        assert sp.Rational(step["w1"]) == 1 - sp.Rational(-3, 5) ** t and step["w2"] == "0"
    text = " ".join(run("solve", *UNEXCITED).output.split())
    assert "the top direction is not excited from this start" in text
    assert "the largest eigenvalue it excites is 4/3" in text and "reached for every 0 < lr < 3/2" in text


@pytest.mark.parametrize("lr, behaviour, reached", [
    ("1/2", "converges", True),            # 1 - (1/2)(4/3) = 1/3 > 0
    ("6/5", "converges, oscillating", True),
    ("3/2", "oscillates without converging", False),  # factor exactly -1
    ("8/5", "diverges", False),            # factor -17/15
])
def test_the_run_is_labelled_by_the_largest_excited_eigenvalue(lr, behaviour, reached):
    args = list(UNEXCITED)
    args[args.index("6/5")] = lr
    args[args.index("30")] = "4"
    m = _json(args)
    assert m["lr_behaviour"] == behaviour and m["limit_reached"] is reached


def test_a_start_exciting_the_top_direction_is_labelled_as_before():
    m = _json(["--model", "w1*x + w2", "--init", "w1=0", "--init", "w2=1", "--data", "x=-1,y=-1", "--data",
               "x=1,y=1", "--data", "x=0,y=0", "--lr", "6/5"])
    # J^T r0 = (-2, 3): both directions, so the global limit 1 applies and 6/5 diverges
    assert m["top_direction_excited"] is True and m["max_stable_lr_from_start"] == "1"
    assert m["lr_behaviour"] == "diverges" and m["limit_reached"] is False
    assert "not excited" not in run("solve", "--model", "w1*x + w2", "--init", "w1=0", "--init", "w2=1",
                                    "--data", "x=-1,y=-1", "--data", "x=1,y=1", "--data", "x=0,y=0").output


def test_irrational_eigenvalues_are_compared_exactly():
    # f = w1*a + w2*b at (a, b) = (1, 1), (1, 0): J = [[1, 1], [1, 0]], J^T J = [[2, 1], [1, 1]] with
    # eigenvalues (3 +- sqrt 5)/2, and c' = 2/2 = 1. From w = 0, J^T r0 = -J^T y = (-1, -1) excites both, so
    # lr = 1/2 is judged against 2 / lambda_max = 3 - sqrt 5 = 0.76..: stable, and above its half.
    problem = build_problem(models=["w1*a + w2*b"], init=["w1=0", "w2=0"], data=["a=1,b=1,y=1", "a=1,b=0,y=0"],
                            lr="1/2")
    s = derive_model(problem, problem.models[0]).stability
    assert sp.simplify(s.lambda_max - (3 + sp.sqrt(5)) / 2) == 0
    assert s.top_excited and s.behaviour == "converges, oscillating"
    assert sp.simplify(s.max_lr_run - (3 - sp.sqrt(5))) == 0


def test_the_minimal_polynomial_of_a_vector_finds_each_eigenspace():
    from symreparam import linalg

    h = linalg.to_domain([[2, 1], [1, 2]])  # eigenvalues 1 (along (1, -1)) and 3 (along (1, 1))
    assert linalg.largest_eigenvalue(h, linalg.to_domain([[1], [-1]])) == 1
    assert linalg.largest_eigenvalue(h, linalg.to_domain([[1], [1]])) == 3
    assert linalg.largest_eigenvalue(h, linalg.to_domain([[1], [0]])) == 3
    assert linalg.largest_eigenvalue(h, linalg.to_domain([[0], [0]])) == 0
    irrational = linalg.to_domain([[2, 1], [1, 1]])
    assert sp.simplify(linalg.largest_eigenvalue(irrational, linalg.to_domain([[1], [0]]))
                       - (3 + sp.sqrt(5)) / 2) == 0


# --- 4. properties --------------------------------------------------------------------------------------

decimals = st.decimals(min_value=Decimal("-9.99"), max_value=Decimal("9.99"), places=2)
MODELS = {  # model -> (its parameters, its value from parameters and one input as exact Fractions)
    "w*x": (("w",), lambda w, x: w[0] * x),
    "w1*x + w2": (("w1", "w2"), lambda w, x: w[0] * x + w[1]),
    "10*w3*x + w4": (("w3", "w4"), lambda w, x: 10 * w[0] * x + w[1]),
    "(u + v)*x + (u - v)": (("u", "v"), lambda w, x: (w[0] + w[1]) * x + (w[0] - w[1])),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(sorted(MODELS)), start=st.lists(decimals, min_size=2, max_size=2),
       xs=st.lists(decimals, min_size=1, max_size=3, unique=True),
       lr=st.sampled_from(["0.1", "1/50", "0.75", "3"]), loss=st.sampled_from(["mse", "half-mse", "sse"]))
def test_a_start_that_fits_decimal_data_exactly_always_stays_put(model, start, xs, lr, loss):
    params, value = MODELS[model]
    w0 = [Fraction(str(d)) for d in start[: len(params)]]
    # y = f(x; w0), written as the decimal it exactly is (products and sums of 2-place decimals)
    data = [f"x={x},y={_decimal(value(w0, Fraction(str(x))))}" for x in xs]
    init = [f"{p}={d}" for p, d in zip(params, start)]
    solution = solve(models=[model], init=init, data=data, lr=lr, steps=3, loss=loss)
    d = solution.models[0].derivation
    assert all(g == 0 for g in d.gradient)
    assert all(step == d.initial for step in d.trajectory)
    assert d.stability.behaviour == "stays put"
    assert solution.max_rel_error < 1e-8


def _decimal(q: Fraction) -> Decimal:
    text = Decimal(q.numerator) / Decimal(q.denominator)
    assert Fraction(str(text)) == q  # the data are exact decimals
    return text


def _gd(jac, r0_target, w0, rate, steps):
    """Exact GD gradients g_t = J^T r_t for an affine model with Jacobian ``jac`` (rows of Fractions)."""
    p = len(w0)
    w = list(w0)
    out = []
    for _ in range(steps + 1):
        r = [sum(row[j] * w[j] for j in range(p)) - t for row, t in zip(jac, r0_target)]
        g = [sum(row[j] * ri for row, ri in zip(jac, r)) for j in range(p)]
        out.append(g)
        w = [wj - rate * gj for wj, gj in zip(w, g)]
    return out


def _norm2(g):
    return sum(v * v for v in g)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.integers(1, 3), c=st.integers(-3, 3), w1=st.integers(-2, 2), w2=st.integers(-2, 2),
       y0=st.integers(-2, 2), lr=st.sampled_from(["1/20", "1/5", "2/5", "1/2", "3/5", "3/4", "1", "6/5", "3/2", "2"]),
       extra=st.booleans())
def test_the_reported_behaviour_is_the_trend_of_the_exact_iterates(a, c, w1, w2, y0, lr, extra):
    """Symmetric data x = -a, a, 0 make J^T J diagonal: a start with w2 = y0 = 0 excites the slope only,
    which is sometimes and sometimes not the top direction; ``extra`` adds a point that couples them."""
    points = [(-a, -c), (a, c), (0, y0)] + ([(1, 1)] if extra else [])
    problem = build_problem(models=["w1*x + w2"], init=[f"w1={w1}", f"w2={w2}"],
                            data=[f"x={x},y={y}" for x, y in points], lr=lr, steps=1)
    s = derive_model(problem, problem.models[0]).stability
    n = len(points)
    rate = Fraction(lr) * Fraction(2, n)  # mse: grad = (2/n) J^T r
    steps = 300
    g = _gd([[Fraction(x), Fraction(1)] for x, _ in points], [Fraction(y) for _, y in points],
            [Fraction(w1), Fraction(w2)], rate, steps)
    norms = [_norm2(v) for v in g]
    if s.behaviour == "stays put":
        assert norms[0] == 0
    elif s.behaviour == "converges":
        # every excited factor 1 - lr*lambda is in [0, 1): norms fall and successive gradients never turn
        assert all(b < a_ for a_, b in zip(norms, norms[1:]) if a_ > 0)
        assert all(sum(p * q for p, q in zip(u, v)) >= 0 for u, v in zip(g, g[1:]))
    elif s.behaviour == "converges, oscillating":
        assert all(b < a_ for a_, b in zip(norms, norms[1:]) if a_ > 0)
    elif s.behaviour == "oscillates without converging":
        # the top excited factor is exactly -1 and the others are smaller: norms fall to a positive floor
        assert all(b <= a_ for a_, b in zip(norms, norms[1:])) and norms[-1] > 0
    else:
        assert s.behaviour == "diverges"
        assert norms[-1] > norms[0] * 10**6
    # the global limit is never larger than this run's
    assert sp.Rational(2) / s.lambda_max <= s.max_lr_run
