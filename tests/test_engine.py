"""Exact results of the engine against values derived by hand (see the comments for each)."""

from __future__ import annotations

import pytest
import sympy as sp
from conftest import R, S

from symreparam import solve
from symreparam.errors import ProblemError
from symreparam.problem import Loss, build_problem, reference_problem

x, eta = S("x"), S("eta")


def params(solution, k):
    return solution.models[k].derivation.final


# Reference: r = f(7) - 10 = -1 for both models. mse, n = 1: dL/dw = 2 r df/dw.
# f1: grad = (2*-1*7, 2*-1*1) = (-14, -2); w = (1 + 1.4, 2 + 0.2) = (12/5, 11/5).
# f2: df/dw3 = 10x = 70: grad = (-140, -2); w = (0.1 + 14, 2.2) = (141/10, 11/5).
# half-mse halves the gradient: (1.7, 2.1) and (7.1, 2.1).
@pytest.mark.parametrize("loss, f1, f2, fun1, fun2", [
    ("mse", (R(12, 5), R(11, 5)), (R(141, 10), R(11, 5)), 12 * x / 5 + R(11, 5), 141 * x + R(11, 5)),
    ("half-mse", (R(17, 10), R(21, 10)), (R(71, 10), R(21, 10)), 17 * x / 10 + R(21, 10), 71 * x + R(21, 10)),
    ("sse", (R(12, 5), R(11, 5)), (R(141, 10), R(11, 5)), 12 * x / 5 + R(11, 5), 141 * x + R(11, 5)),
])
def test_reference_one_step(loss, f1, f2, fun1, fun2):
    sol = solve(reference_problem(loss=loss))
    assert params(sol, 0) == f1
    assert params(sol, 1) == f2
    assert sp.expand(sol.models[0].derivation.function_final - fun1) == 0
    assert sp.expand(sol.models[1].derivation.function_final - fun2) == 0
    assert all(type(v) in (sp.Rational, sp.Integer) or v.is_Rational for v in params(sol, 1))


def test_reference_comparison_and_preconditioner():
    sol = solve()
    comp = sol.comparison
    assert comp.basis.functions == (x, 1)
    assert comp.basis.labels == ("slope", "bias")
    assert sol.models[0].changes == (R(7, 5), R(1, 5))
    assert sol.models[1].changes == (140, R(1, 5))
    assert comp.ratios[1] == (100, 1)
    assert sol.models[0].reparam.P == sp.eye(2)
    assert sol.models[1].reparam.A == sp.diag(10, 1)
    assert sol.models[1].reparam.P == sp.diag(100, 1)
    assert comp.same_function_class is True
    assert comp.same_initial_function is True


def test_reference_stability_kernel_limit_newton():
    sol = solve()
    m1, m2 = (m.derivation for m in sol.models)
    # K = grad f(7)^T grad f(7): 7^2 + 1 = 50 and 70^2 + 1 = 4901; H = 2 K (mse, n = 1).
    assert m1.gram == sp.Matrix([[50]]) and m2.gram == sp.Matrix([[4901]])
    assert m1.stability.max_lr == R(1, 50) and m2.stability.max_lr == R(1, 4901)
    assert m1.stability.behaviour == m2.stability.behaviour == "diverges"
    assert sp.expand(m1.kernel[0] - (7 * x + 1)) == 0
    assert sp.expand(m2.kernel[0] - (700 * x + 1)) == 0
    # Minimum-norm fit from w0: w0 + J^T (J J^T)^-1 (y - f) = (1 + 7/50, 2 + 1/50).
    assert m1.limit == (R(57, 50), R(101, 50))
    assert m2.limit == (R(1, 10) + R(70, 4901), 2 + R(1, 4901))
    # One point, two parameters: the Hessian is singular, Newton is not defined.
    assert m1.newton is None and [n.kind for n in m1.notes] == ["newton-singular"]
    # The function-space step with K reproduces the parameter step exactly for linear models.
    assert sp.expand(m2.function_step - m2.function_final) == 0


def test_symbolic_learning_rate():
    sol = solve(reference_problem(lr="eta"))
    assert sol.models[1].derivation.final == (R(1, 10) + 140 * eta, 2 + 2 * eta)
    assert sol.models[0].derivation.final == (1 + 14 * eta, 2 + 2 * eta)
    assert sol.comparison.ratios[1] == (100, 1)
    assert sol.models[0].derivation.stability.behaviour is None


def test_two_steps_by_hand():
    # After step 1, f1(7) = 84/5 + 11/5 = 19, r = 9, grad = 2*9*(7, 1) = (126, 18):
    # w = (12/5 - 63/5, 11/5 - 9/5) = (-51/5, 2/5).
    sol = solve(reference_problem(steps=2))
    assert sol.models[0].derivation.trajectory == ((1, 2), (R(12, 5), R(11, 5)), (R(-51, 5), R(2, 5)))


def test_many_steps_beyond_float_range_are_checked():
    # |1 - 0.1 * 9802| ~ 979 per step: after 150 steps the iterates are ~10^450, beyond float64.
    sol = solve(reference_problem(steps=150))
    w3 = sol.models[1].derivation.final[0]
    assert abs(w3) > sp.Integer(10) ** 400
    assert sol.max_rel_error < 1e-8


def test_non_diagonal_reparameterisation():
    # (u+v) x + (u-v): A = [[1, 1], [1, -1]], P = 2 I: plain GD on theta at twice the rate.
    sol = solve(models=["(u+v)*x + (u-v)", "a*x + b"], init=["u=1", "v=0", "a=1", "b=1"],
                data=["x=2,y=5"], lr="1/10", steps=1, loss="mse")
    nd, plain = sol.models
    assert nd.reparam.A == sp.Matrix([[1, 1], [1, -1]])
    assert nd.reparam.P == 2 * sp.eye(2)
    assert sol.comparison.same_function_class is True
    assert sol.comparison.same_initial_function is True
    # r = 3 - 5 = -2; grad_theta = 2 r (x, 1) = (-8, -4); plain: theta += 0.1 * (8, 4).
    assert plain.changes == (R(4, 5), R(2, 5))
    assert nd.changes == (R(8, 5), R(4, 5))
    assert sol.comparison.ratios[0] == (2, 2) or sol.comparison.ratios[1] == (R(1, 2), R(1, 2))


def test_overparameterised_rank_deficient():
    sol = solve(models=["(a1 + a2)*x + b"], init=["a1=0", "a2=1", "b=0"], data=["x=1,y=2", "x=2,y=3"],
                lr="1/20", steps=1, loss="mse")
    m = sol.models[0]
    assert m.reparam.A == sp.Matrix([[1, 1, 0], [0, 0, 1]])
    assert m.reparam.P == sp.diag(2, 1)
    d = m.derivation
    assert d.newton is None  # H = c' J^T J is 3x3 of rank 2
    # The limit is the least-squares fit y = x + 1 reached from w0 with a1 - a2 preserved (min norm):
    # a1 + a2 = 1 with a1 - a2 = -1 => a1 = 0, a2 = 1, b = 1.
    assert d.limit == (0, 1, 1)
    assert sp.expand(d.function_limit - (x + 1)) == 0


def test_newton_is_the_same_function_for_invertible_reparameterisations():
    sol = solve(models=["w1*x + w2", "10*w3*x + w4", "(u+v)*x + (u-v)"],
                init=["w1=1", "w2=2", "w3=0.1", "w4=2", "u=1.5", "v=-0.5"],
                data=["x=1,y=1", "x=3,y=2"], lr="0.01")
    newton = [m.derivation.function_newton for m in sol.models]
    # The least-squares line through (1, 1) and (3, 2) is y = x/2 + 1/2.
    assert all(sp.expand(f - (x / 2 + R(1, 2))) == 0 for f in newton)
    gd = [m.derivation.function_final for m in sol.models]
    assert sp.expand(gd[0] - gd[1]) != 0  # while GD moves them differently


def test_nonlinear_models_get_iterates_and_honest_gaps():
    sol = solve(models=["exp(2*s)*x + t", "u*v*x"], init=["s=0", "t=0", "u=1", "v=1"],
                data=["x=1,y=2"], lr="1/10", steps=2, loss="half-mse")
    e, m = (mm.derivation for mm in sol.models)
    assert not e.is_linear and e.stability is None and e.limit is None and e.newton is None
    # half-mse, n = 1: grad = r df/dw. Step 1 at (s, t) = (0, 0): f = x, r = 1 - 2 = -1,
    # df/ds = 2 exp(2s) x = 2, df/dt = 1 => s = 0.2, t = 0.1.
    assert e.trajectory[1] == (R(1, 5), R(1, 10))
    # u*v*x at (1, 1): r = -1, df/du = v x = 1, df/dv = u x = 1 => (1.1, 1.1).
    assert m.trajectory[1] == (R(11, 10), R(11, 10))
    # Step 2: f = 1.21, r = -0.79, grads = 1.1 * -0.79 => 1.1 + 0.1 * 0.869 = 1.1869.
    assert m.trajectory[2] == (R(11869, 10000), R(11869, 10000))
    assert sol.comparison.same_function_class is None
    assert [n.kind for n in e.notes] == ["nonlinear"]


def test_loss_factors():
    assert Loss.MSE.scale(4) == R(1, 4) and Loss.HALF_MSE.scale(4) == R(1, 8) and Loss.SSE.scale(4) == 1


def test_multi_input_data():
    sol = solve(models=["a*x1 + b*x2"], init=["a=0", "b=0"], data=["x1=1,x2=2,y=3"], lr="1/10", loss="sse")
    # r = -3; grad = 2 r (x1, x2) = (-6, -12): (0.6, 1.2).
    assert sol.models[0].derivation.final == (R(3, 5), R(6, 5))


# f1 on the reference: lambda_max(H) = 100, so GD converges monotonically for lr <= 1/100, with
# oscillation for 1/100 < lr < 1/50, oscillates forever at lr = 1/50 and diverges beyond.
@pytest.mark.parametrize("lr, behaviour", [
    ("1/200", "converges"), ("1/100", "converges"), ("3/200", "converges, oscillating"),
    ("1/50", "oscillates without converging"), ("1/49", "diverges"), ("1/10", "diverges"),
])
def test_behaviour_classes(lr, behaviour):
    sol = solve(reference_problem(lr=lr))
    assert sol.models[0].derivation.stability.behaviour == behaviour
    assert sol.models[1].derivation.stability.behaviour == "diverges"  # f2's limit is 1/4901


def test_problem_validation_names_the_field():
    with pytest.raises(ProblemError, match=r"^--init: w5 appears in no model$"):
        build_problem(["w1*x + w2"], ["w1=1", "w2=2", "w5=1"], ["x=1,y=2"])
    with pytest.raises(ProblemError, match=r"^--data 2: missing y"):
        build_problem(["w1*x + w2"], ["w1=1", "w2=2"], ["x=1,y=2", "x=3"])
    with pytest.raises(ProblemError, match=r"^--init: no initial value for w2"):
        build_problem(["w1*x + w2"], ["w1=1"], ["x=1,y=2"])


def test_transcendental_features_with_several_points():
    # f = w1 e^x + w2 at x = 0, 1: J = [[1, 1], [e, 1]], mse with n = 2 so H = J^T J.
    # tr H = e^2 + 3, det H = det(J)^2 = (1 - e)^2: lambda_max = (tr + sqrt(tr^2 - 4 det)) / 2, exactly.
    sol = solve(models=["w1*exp(x) + w2"], init=["w1=1", "w2=0"], data=["x=0,y=1", "x=1,y=0"])
    st = sol.models[0].derivation.stability
    e = sp.E
    tr, det = e**2 + 3, (1 - e) ** 2
    assert abs(sp.N(st.lambda_max - (tr + sp.sqrt(tr**2 - 4 * det)) / 2, 50)) < sp.Float("1e-45")
    # three non-zero eigenvalues with transcendental entries: no closed form, said so
    sol = solve(models=["w1*exp(x) + w2*x + w3"], init=["w1=1", "w2=0", "w3=0"],
                data=["x=0,y=1", "x=1,y=0", "x=2,y=1", "x=3,y=1"])
    d = sol.models[0].derivation
    assert d.stability is None and [n.kind for n in d.notes] == ["stability-no-closed-form"]
    assert d.limit is not None


def test_a_start_that_fits_the_data_stays_put():
    # f(7) = 7 = y: the gradient is zero, so even a rate far above 2/lambda = 1/49 moves nothing
    sol = solve(models=["w*x"], init=["w=1"], data=["x=7,y=7"], lr="1")
    d = sol.models[0].derivation
    assert d.final == (1,) and d.stability.max_lr == R(1, 49) and d.stability.behaviour == "stays put"
