"""Hypothesis properties of the mathematics, on random linear reparameterisations.

Each property recomputes the expected value in a different way from the engine: theta-space
gradients with SymPy matrices, the GD limit by many float steps, Newton's step through a second,
random parameterisation.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from conftest import S
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from symreparam import solve
from symreparam.derive import loss_factor
from symreparam.numeric import exact_float

x = S("x")
BASES = {2: (x, sp.Integer(1)), 3: (x**2, x, sp.Integer(1))}
LOSSES = ("mse", "half-mse", "sse")
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def invertible(draw, k):
    rows = draw(st.lists(st.lists(st.integers(-4, 4), min_size=k, max_size=k), min_size=k, max_size=k))
    a = sp.Matrix(rows)
    assume(a.det() != 0)
    return a


def model_text(a: sp.Matrix, b: sp.Matrix, prefix: str) -> tuple[str, list[str]]:
    """The model sum_k (A w + b)_k basis_k written out as a string, with its parameter names."""
    k = a.rows
    names = [f"{prefix}{j + 1}" for j in range(a.cols)]
    w = sp.Matrix([S(n) for n in names])
    theta = a * w + b
    expr = sum((theta[i] * BASES[k][i] for i in range(k)), sp.Integer(0))
    return sp.sstr(expr), names


def rational_text(v: sp.Rational) -> str:
    return f"{v.p}/{v.q}"


@st.composite
def problems(draw, k, points_min=1):
    a = draw(invertible(k))
    b = sp.Matrix(draw(st.lists(st.integers(-3, 3), min_size=k, max_size=k)))
    w0 = [sp.Integer(v) for v in draw(st.lists(st.integers(-3, 3), min_size=k, max_size=k))]
    xs = draw(st.lists(st.integers(-3, 3), min_size=points_min, max_size=4, unique=True))
    ys = draw(st.lists(st.integers(-5, 5), min_size=len(xs), max_size=len(xs)))
    lr = sp.Rational(1, draw(st.integers(2, 500)))
    loss = draw(st.sampled_from(LOSSES))
    return a, b, w0, xs, ys, lr, loss


def build(a, b, w0, xs, ys, lr, loss, prefix="w"):
    text, names = model_text(a, b, prefix)
    return dict(models=[text], init=[f"{n}={v}" for n, v in zip(names, w0)],
                data=[f"x={xi},y={yi}" for xi, yi in zip(xs, ys)], lr=rational_text(lr), loss=loss)


@PROPERTY
@given(st.sampled_from([2, 3]).flatmap(problems))
def test_gd_on_w_is_preconditioned_gd_on_theta(case):
    a, b, w0, xs, ys, lr, loss = case
    sol = solve(**build(*case))
    m = sol.models[0]
    k = a.rows
    theta0 = a * sp.Matrix(w0) + b
    theta1 = a * sp.Matrix(m.derivation.final) + b
    # grad_theta L = c' Phi^T (Phi theta - y), built here from the basis, not from the engine.
    phi = sp.Matrix([[BASES[k][i].subs(x, xi) for i in range(k)] for xi in xs])
    grad_theta = loss_factor(sol.problem) * phi.T * (phi * theta0 - sp.Matrix(ys))
    assert theta1 == theta0 - lr * (a * a.T) * grad_theta
    assert m.reparam.P == a * a.T
    # the function-space form with the tangent kernel is exact for linear models
    assert sp.expand(m.derivation.function_step - m.derivation.function_final) == 0


@PROPERTY
@given(st.sampled_from([2, 3]).flatmap(problems))
def test_limit_is_where_many_small_steps_go(case):
    a, b, w0, xs, ys, lr, loss = case
    sol = solve(**build(*case))
    d = sol.models[0].derivation
    lam = exact_float(d.stability.lambda_max)
    assume(lam > 0)
    # Float GD at half the largest stable rate; the slowest direction contracts by (1 - lr*lam_min).
    jac = np.array(d.jacobian.tolist(), dtype=float)
    cprime = exact_float(loss_factor(sol.problem))
    hess = cprime * jac.T @ jac
    eig = np.linalg.eigvalsh(hess)
    positive = eig[eig > 1e-9 * eig.max()]
    step = 1.0 / eig.max()
    assume(positive.min() * step > 1e-3)  # converges within the iteration budget below
    w = np.array([exact_float(v) for v in w0])
    r0 = np.array([exact_float(v) for v in d.residuals])
    for _ in range(40000):
        r = r0 + jac @ (w - np.array([exact_float(v) for v in w0]))
        w = w - step * cprime * jac.T @ r
    limit = np.array([exact_float(v) for v in d.limit])
    assert np.allclose(w, limit, rtol=1e-6, atol=1e-6)


@PROPERTY
@given(st.sampled_from([2, 3]).flatmap(lambda k: st.tuples(problems(k, points_min=k), invertible(k))))
def test_newton_step_is_the_same_function_for_every_invertible_a(case):
    (a, b, w0, xs, ys, lr, loss), a2 = case
    assume(len(xs) >= a.rows)
    # The second model starts as the same function: v0 = A2^-1 (A w0 + b - b2) with b2 = 0.
    theta0 = a * sp.Matrix(w0) + b
    v0 = list(a2.inv() * theta0)
    first = build(a, b, w0, xs, ys, lr, loss, prefix="w")
    second = build(a2, sp.zeros(a.rows, 1), v0, xs, ys, lr, loss, prefix="v")
    sol = solve(models=first["models"] + second["models"], init=first["init"] + [
        f"{n}={rational_text(sp.Rational(v))}" for n, v in zip([f"v{j + 1}" for j in range(a.rows)], v0)],
        data=first["data"], lr=first["lr"], loss=loss)
    f1, f2 = (m.derivation for m in sol.models)
    assert sol.comparison.same_initial_function
    assert f1.function_newton is not None
    assert sp.expand(f1.function_newton - f2.function_newton) == 0
    # For a quadratic loss with invertible Hessian, Newton lands on the least-squares fit in one step.
    k = a.rows
    phi = sp.Matrix([[BASES[k][i].subs(x, xi) for i in range(k)] for xi in xs])
    theta_ls = (phi.T * phi).inv() * phi.T * sp.Matrix(ys)
    expected = sum((theta_ls[i] * BASES[k][i] for i in range(k)), sp.Integer(0))
    assert sp.expand(f1.function_newton - expected) == 0
