"""Independent float64 re-computation of every exact result, and the discrepancy it finds.

The check never reuses a SymPy derivative: gradients come from :mod:`symreparam.numeric` (forward-mode
chain rule on the model as written), eigenvalues from ``numpy.linalg.eigvalsh``, limits from
``numpy.linalg.pinv``, Newton steps from ``numpy.linalg.solve``. Each GD step is checked from the
exact previous iterate, so float rounding does not accumulate over many steps; iterates beyond the
float range are compared after an exact rescaling by a power of two (possible because for linear
models the step is an affine map).

Everything is vectorised over a leading axis of V *variants* of one model: ``solve`` checks V = 1
problem (or one per sample value of a symbolic learning rate), ``generate`` checks a thousand homework
variants in one pass. The caller turns its exact answers into an :class:`Exact` of floats; this module
recomputes them from the :class:`Case` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symreparam.derive import ModelDerivation, loss_factor
from symreparam.errors import VerificationError
from symreparam.numeric import CompiledModel, Evaluation, compile_model, exact_float
from symreparam.problem import Problem
from symreparam.reparam import Basis, Reparameterisation

TOLERANCE = 1e-8
# Sample learning rates substituted into answers that are functions of a symbolic rate.
LR_SAMPLES = (sp.Rational(1, 10), sp.Rational(1, 1000))
_TINY = 1e-300
_BIG_BITS = 900  # beyond about 2**900 values are rescaled before conversion to float


@dataclass(frozen=True)
class Case:
    """The float64 inputs of V variants of one model, from which everything is recomputed.

    ``x`` and ``probes`` hold the data inputs followed by the values of any constants the model
    expression contains (an exercise family's drawn scale factor, say), one row per point.
    """

    model: CompiledModel
    x: np.ndarray  # (V, n, d)
    y: np.ndarray  # (V, n)
    w0: np.ndarray  # (V, p)
    lr: np.ndarray  # (V,)
    cprime: np.ndarray  # (V,) c' in grad L = c' sum_i r_i grad f(x_i)
    probes: np.ndarray  # (V, m, d): where functions are compared; the data points come first
    linear: bool


@dataclass(frozen=True)
class Exact:
    """Exact answers of the V variants, rounded to float64; None where a quantity does not apply.

    Iterates and the final function/coefficients are divided by 2**shift (per variant and step) so
    that values beyond the float range stay comparable.
    """

    trajectory: np.ndarray  # (V, T+1, p) / 2**shift
    shift: np.ndarray  # (V, T+1) integers
    residuals: np.ndarray  # (V, n)
    jacobian: np.ndarray  # (V, n, p)
    gradient: np.ndarray  # (V, p)
    gram: np.ndarray  # (V, n, n)
    kernel: np.ndarray  # (V, m, n): K(probe, x_i)
    f_initial: np.ndarray  # (V, m)
    f_final: np.ndarray  # (V, m) / 2**shift[:, -1]
    f_step: np.ndarray  # (V, m)
    basis: np.ndarray  # (V, m, k): basis functions at the probes
    coef_initial: np.ndarray  # (V, k)
    coef_final: np.ndarray  # (V, k) / 2**shift[:, -1]
    lambda_max: np.ndarray | None = None  # (V,)
    max_lr: np.ndarray | None = None  # (V,), inf where the Hessian is zero
    limit: np.ndarray | None = None  # (V, p)
    newton: np.ndarray | None = None  # (V, p); rows of nan where the Hessian is singular
    A: np.ndarray | None = None  # (V, k, p)
    b: np.ndarray | None = None  # (V, k)
    P: np.ndarray | None = None  # (V, k, k)
    # Further answers an exercise family may show (None where not given):
    hessian: np.ndarray | None = None  # (V, p, p): H = c' J^T J
    step_map: np.ndarray | None = None  # (V, p, p): M in w -> M w + v
    step_offset: np.ndarray | None = None  # (V, p): v
    margin: np.ndarray | None = None  # (V, p): leading principal minors of (2/lr) I - H
    newton_move: np.ndarray | None = None  # (V, p): the Newton step minus w0
    coef_path: np.ndarray | None = None  # (V, T+1, k): basis coefficients after every step (unscaled)


@dataclass(frozen=True)
class Check:
    """One comparison between exact values and their float64 re-computation."""

    name: str
    max_rel_error: float


@dataclass(frozen=True)
class Verification:
    """All checks of one model; ``max_rel_error`` is the largest discrepancy among them."""

    checks: tuple[Check, ...]

    @property
    def max_rel_error(self) -> float:
        """The largest relative discrepancy over every check."""
        return max((c.max_rel_error for c in self.checks), default=0.0)


def quiet(function):
    """Run ``function`` with NumPy's floating-point warnings off: overflow and invalid values are
    expected in a check of divergent runs, and are judged by the comparison, not printed to stderr."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return wrapper


# Float64's own noise in a quantity is within a small multiple of eps times the size of the terms it is
# computed from (see :data:`symreparam.numeric.Dual`); 2**10 leaves room for the depth of the
# computation. A discrepancy counts when it exceeds TOLERANCE of the quantity itself and that noise.
NOISE = 2.0**10 * float(np.finfo(float).eps) / TOLERANCE


def relative_error(exact: np.ndarray, approx: np.ndarray, size: np.ndarray | float | None = None) -> np.ndarray:
    """Per variant: max over entries of |exact - approx| / max(M, NOISE * size), M the largest of
    |exact| and |approx| over the whole quantity (all but the first axis).

    Errors are relative to the size of the whole quantity (a vector, a matrix), so a component that
    is zero by cancellation does not inflate them. ``size`` is the size of the terms each entry was
    computed from (per variant, or per entry like ``exact``; see :func:`residuals_sized`): float64's
    noise scales with it, so a quantity that is exactly zero, such as the gradient at the least-squares
    optimum, is judged against that noise (eps * size) rather than against its own size, zero, while a
    true disagreement above TOLERANCE of the quantity is still caught. Non-finite values count as
    infinitely wrong.
    """
    exact = np.asarray(exact, dtype=float)
    approx = np.asarray(approx, dtype=float)
    v = exact.shape[0]
    e = exact.reshape(v, -1)
    a = approx.reshape(v, -1)
    if e.shape[1] == 0:
        return np.zeros(v)
    with np.errstate(all="ignore"):
        denominator = np.maximum(np.max(np.abs(e), axis=1), np.max(np.abs(a), axis=1))[:, None]
        if size is not None:
            s = np.asarray(size, dtype=float)
            s = np.broadcast_to(s, (v,))[:, None] if s.ndim <= 1 else s.reshape(v, -1)
            denominator = np.maximum(denominator, NOISE * np.where(np.isfinite(s), s, 0.0))
        err = np.max(np.abs(e - a) / np.maximum(denominator, _TINY), axis=1)
    bad = ~(np.all(np.isfinite(e), axis=1) & np.all(np.isfinite(a), axis=1))
    return np.where(bad, np.inf, err)


def _rows(values: np.ndarray) -> np.ndarray:
    """(V, m, d) -> (V*m, d) for the evaluator."""
    return values.reshape(values.shape[0] * values.shape[1], values.shape[-1])


def evaluate_sized(case: Case, points: np.ndarray, w: np.ndarray, w_size: np.ndarray | None = None) -> Evaluation:
    """Model values (V, m) and Jacobians (V, m, p) at per-variant points and parameters, with their sizes
    (``w_size``: the sizes of parameters float64 computed; default |w|)."""
    v, m = points.shape[:2]
    out = case.model.evaluate(_rows(points), np.repeat(w, m, axis=0),
                              None if w_size is None else np.repeat(w_size, m, axis=0))
    return Evaluation(out.value.reshape(v, m), out.jacobian.reshape(v, m, -1),
                      out.size.reshape(v, m), out.jacobian_size.reshape(v, m, -1))


def residuals_sized(case: Case, at: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """The residuals r = f - y at the data (V, n) and the size of the terms they come from (V, n).

    Every quantity built from residuals (gradients, steps, function-space steps, limits) takes its
    size from these by the same products and sums as its value; that is the one rule by which
    ``solve``, ``generate`` and ``check`` tell float64 noise from a wrong exact answer.
    """
    return at.value - case.y, at.size + np.abs(case.y)


def check(case: Case, exact: Exact) -> dict[str, np.ndarray]:
    """Recompute everything from ``case`` and compare with ``exact``: {check name: error per variant}."""
    start = evaluate_sized(case, case.x, case.w0)
    jac, s_jac = start.jacobian, start.jacobian_size
    r0, s_r0 = residuals_sized(case, start)
    cprime = np.abs(case.cprime)[:, None]
    grad = case.cprime[:, None] * np.einsum("vnp,vn->vp", jac, r0)
    out = {
        "the residuals at initialisation": relative_error(exact.residuals, r0, s_r0),
        "the Jacobian df/dw at the data": relative_error(exact.jacobian, jac, s_jac),
        "the gradient at initialisation": relative_error(exact.gradient, grad,
                                                         cprime * np.einsum("vnp,vn->vp", s_jac, s_r0)),
        "the tangent-kernel Gram matrix": relative_error(exact.gram, np.einsum("vnp,vmp->vnm", jac, jac),
                                                         np.einsum("vnp,vmp->vnm", s_jac, s_jac)),
    }
    affine = None
    if case.linear:
        affine, err = _affine(case, start)
        out["that the model is affine in its parameters"] = err
    out["every gradient-descent step"] = _steps(case, exact, affine)

    probe = evaluate_sized(case, case.probes, case.w0)
    fp0, jac_probe = probe.value, probe.jacobian
    kernel = np.einsum("vmp,vnp->vmn", jac_probe, jac)
    s_kernel = np.einsum("vmp,vnp->vmn", probe.jacobian_size, s_jac)
    out["the tangent kernel K(x, x_i)"] = relative_error(exact.kernel, kernel, s_kernel)
    rate = case.lr * case.cprime
    step = fp0 - rate[:, None] * np.einsum("vmn,vn->vm", kernel, r0)
    s_step = probe.size + np.abs(rate)[:, None] * np.einsum("vmn,vn->vm", s_kernel, s_r0)
    out["the function-space form of the step"] = relative_error(exact.f_step, step, s_step)
    out["the function at the start"] = relative_error(exact.f_initial, fp0, probe.size)
    final, s_final = _function(case, exact.trajectory[:, -1], exact.shift[:, -1], affine)
    out["the function after the steps"] = relative_error(exact.f_final, final, s_final)
    out["the basis coefficients"] = np.maximum(
        relative_error(np.einsum("vmk,vk->vm", exact.basis, exact.coef_initial), fp0, probe.size),
        relative_error(np.einsum("vmk,vk->vm", exact.basis, exact.coef_final), final, s_final))
    if exact.coef_path is not None:
        out["the basis coefficients after every step"] = np.max(np.stack([
            relative_error(np.einsum("vmk,vk->vm", exact.basis, exact.coef_path[:, t]),
                           *_function(case, exact.trajectory[:, t], exact.shift[:, t], affine))
            for t in range(exact.coef_path.shape[1])]), axis=0)
    if case.linear:
        out.update(_linear_checks(case, exact, start, affine, r0, s_r0))
    return out


def _affine(case: Case, start: Evaluation) -> tuple[Evaluation, np.ndarray]:
    """The model at w = 0 on the data (f(x_i; 0) and the constant Jacobian of a model classed as
    linear), and per variant how far from affine it looks in float64.

    Were the structural linearity test wrong, the affine shortcut in the step checks would hide it;
    comparing f and J at w = 0 and at w0 catches that (it is reported as a check of its own).
    """
    zero = evaluate_sized(case, case.x, np.zeros_like(case.w0))
    moved = np.einsum("vnp,vp->vn", zero.jacobian, case.w0)
    err = np.maximum(relative_error(zero.jacobian, start.jacobian, start.jacobian_size),
                     relative_error(start.value, zero.value + moved,
                                    start.size + np.einsum("vnp,vp->vn", zero.jacobian_size, np.abs(case.w0))))
    return zero, err


def _steps(case: Case, exact: Exact, affine: Evaluation | None) -> np.ndarray:
    """Each exact step against one float step from the exact previous iterate (per variant: max error).

    The scale of a step is that of the previous iterate and of the terms of its move, so a run that
    stays put (a move that is exactly zero) is judged on the size of w, not on float64's noise."""
    worst = np.zeros(case.x.shape[0])
    traj = exact.trajectory
    rate = case.lr * case.cprime
    for t in range(traj.shape[1] - 1):
        # Compare at the scale of the later iterate; rescaling by a power of two is exact.
        shift = exact.shift[:, t + 1]
        u = traj[:, t] * np.exp2(exact.shift[:, t] - shift)[:, None]
        if affine is None:
            if np.any(shift != 0):
                raise VerificationError(
                    "verification", "the iterates exceed the float64 range and the model is not linear, so "
                    "they cannot be checked; use fewer steps")
            at = evaluate_sized(case, case.x, u)
            jac, s_jac = at.jacobian, at.jacobian_size
            residual, s_residual = residuals_sized(case, at)
        else:
            # f(w)/s = J u + f(0)/s exactly for w = s u.
            jac, s_jac = affine.jacobian, affine.jacobian_size
            scale = np.exp2(shift)[:, None]
            residual = np.einsum("vnp,vp->vn", jac, u) + (affine.value - case.y) / scale
            s_residual = np.einsum("vnp,vp->vn", s_jac, np.abs(u)) + (affine.size + np.abs(case.y)) / scale
        move = rate[:, None] * np.einsum("vnp,vn->vp", jac, residual)
        predicted = u - move
        size = np.abs(u) + np.abs(rate)[:, None] * np.einsum("vnp,vn->vp", s_jac, s_residual)
        worst = np.maximum(worst, relative_error(traj[:, t + 1], predicted, size))
    return worst


def _function(case: Case, u: np.ndarray, shift: np.ndarray, affine) -> tuple[np.ndarray, np.ndarray]:
    """f(probe; w) / 2**shift for w = u 2**shift, and the size of its terms."""
    if affine is None or not np.any(shift):
        at = evaluate_sized(case, case.probes, u)
        return at.value, at.size
    zero = evaluate_sized(case, case.probes, np.zeros_like(u))
    scale = np.exp2(shift)[:, None]
    return (np.einsum("vmp,vp->vm", zero.jacobian, u) + zero.value / scale,
            np.einsum("vmp,vp->vm", zero.jacobian_size, np.abs(u)) + zero.size / scale)


def _linear_checks(case: Case, exact: Exact, start: Evaluation, zero: Evaluation, r0: np.ndarray,
                   s_r0: np.ndarray) -> dict[str, np.ndarray]:
    """The checks of quantities only linear models have; ``zero`` is the model at w = 0 on the data."""
    out = {}
    jac, s_jac = start.jacobian, start.jacobian_size
    abs_cprime = np.abs(case.cprime)[:, None, None]
    abs_lr = np.abs(case.lr)[:, None, None]
    hessian = case.cprime[:, None, None] * np.einsum("vnp,vnq->vpq", jac, jac)
    s_hessian = abs_cprime * np.einsum("vnp,vnq->vpq", s_jac, s_jac)
    h_size = np.max(s_hessian, axis=(1, 2)) if s_hessian.shape[1] else np.zeros(len(case.w0))
    w0 = case.w0
    # w0 - J^+ r0 is the limit, and Newton's step where J has full column rank. Both are computed by
    # the SVD (numpy's pinv; normal equations would square the condition number of J), whose error is
    # on the scale of |J^+| applied to the residuals' sizes (|J^+| already grows with that condition).
    pinv = np.linalg.pinv(jac)
    s_solution = np.abs(w0) + np.einsum("vpn,vn->vp", np.abs(pinv), s_r0)
    solution = w0 - np.einsum("vpn,vn->vp", pinv, r0)
    if exact.lambda_max is not None:
        lam = np.max(np.linalg.eigvalsh(hessian), axis=1) if hessian.shape[1] else np.zeros(len(w0))
        out["the largest Hessian eigenvalue"] = relative_error(exact.lambda_max[:, None], lam[:, None], h_size)
        with np.errstate(divide="ignore"):
            numeric_max = np.where(lam > 0, 2.0 / lam, np.inf)
        finite = np.isfinite(exact.max_lr) & np.isfinite(numeric_max)
        same_inf = np.isinf(exact.max_lr) & (lam <= 1e-12 * np.maximum(h_size, 1))
        err = relative_error(np.where(finite, exact.max_lr, 0)[:, None], np.where(finite, numeric_max, 0)[:, None])
        out["the largest stable learning rate"] = np.where(finite | same_inf, err, np.inf)
    if exact.limit is not None:
        out["the limit of gradient descent"] = relative_error(exact.limit, solution, s_solution)
    if exact.newton is not None:
        has = np.all(np.isfinite(exact.newton), axis=1)[:, None]
        out["the Newton step"] = relative_error(np.where(has, exact.newton, 0), np.where(has, solution, 0), s_solution)
        if exact.newton_move is not None:
            out["the Newton move"] = relative_error(np.where(has, exact.newton_move, 0),
                                                    np.where(has, solution - w0, 0), s_solution)
    if exact.hessian is not None:
        out["the Hessian of the loss"] = relative_error(exact.hessian, hessian, s_hessian)
    if exact.step_map is not None:
        p = w0.shape[1]
        step_map = np.eye(p)[None] - case.lr[:, None, None] * hessian
        offset = (case.lr * case.cprime)[:, None] * np.einsum("vnp,vn->vp", jac, case.y - zero.value)
        s_offset = (abs_lr * abs_cprime)[:, :, 0] * np.einsum("vnp,vn->vp", s_jac, np.abs(case.y) + zero.size)
        out["one step as an affine map"] = np.maximum(relative_error(exact.step_map, step_map, 1 + abs_lr * s_hessian),
                                                      relative_error(exact.step_offset, offset, s_offset))
    if exact.margin is not None:
        p = w0.shape[1]
        shifted = (2.0 / case.lr)[:, None, None] * np.eye(p)[None] - hessian
        size = np.abs(2.0 / case.lr) + h_size
        out["the convergence test (2/lr) I - H"] = np.max(np.stack([
            relative_error(exact.margin[:, k - 1:k], np.linalg.det(shifted[:, :k, :k])[:, None], size**k)
            for k in range(1, p + 1)]), axis=0)
    if exact.A is not None:
        phi = exact.basis
        at_zero = evaluate_sized(case, case.probes, np.zeros_like(w0))
        out["the reparameterisation A"] = relative_error(np.einsum("vmk,vkp->vmp", phi, exact.A), at_zero.jacobian,
                                                         at_zero.jacobian_size)
        out["the offset b"] = relative_error(np.einsum("vmk,vk->vm", phi, exact.b), at_zero.value, at_zero.size)
        out["the preconditioner P = A A^T"] = relative_error(exact.P, np.einsum("vkp,vlp->vkl", exact.A, exact.A),
                                                             np.einsum("vkp,vlp->vkl", np.abs(exact.A), np.abs(exact.A)))
    return out


def summarise(errors: dict[str, np.ndarray], variant: int = 0) -> Verification:
    """The checks of one variant as a :class:`Verification`."""
    return Verification(tuple(Check(name, float(err[variant])) for name, err in errors.items()))


def require(verification: Verification, field: str) -> Verification:
    """Raise :class:`VerificationError` naming the worst check when any exceeds ``TOLERANCE``."""
    bad = [c for c in verification.checks if not c.max_rel_error <= TOLERANCE]
    if bad:
        worst = max(bad, key=lambda c: c.max_rel_error)
        if not np.isfinite(worst.max_rel_error):
            raise VerificationError(
                field,
                f"{worst.name} goes beyond the float64 range (about 1e308), so the independent check cannot "
                "confirm it and the answer is withheld; use fewer steps, a smaller learning rate or smaller data")
        raise VerificationError(
            field,
            f"the float64 re-computation of {worst.name} disagrees with the exact result (relative error "
            f"{worst.max_rel_error:.3g} > {TOLERANCE:g}), so the answer is withheld. Float64 cannot resolve "
            "problems whose values cancel or differ hugely in size (rescale the data); if yours does not, "
            "please report it",
        )
    return verification


# --- solve: one problem, from SymPy objects -------------------------------------------------------------


def _bits(value: sp.Expr) -> int:
    """About log2 of the magnitude of an exact constant (0 for zero and for non-constants)."""
    if value.is_Rational:
        return abs(value.p).bit_length() - abs(value.q).bit_length() if value != 0 else 0
    if value.free_symbols:
        return 0
    number = sp.N(value, 15)
    if not number.is_Number or number == 0 or not number.is_finite:
        return 0
    import math

    return int(math.floor(float(sp.log(abs(number), 2).evalf(15)))) if number.is_real else 0


def _scaled(values: Sequence[sp.Expr], shift: int) -> list[float]:
    if shift == 0:
        return [exact_float(v) for v in values]
    scale = sp.Integer(2) ** shift
    return [exact_float(v / scale) for v in values]


def _probes(points: Sequence[Sequence[sp.Expr]]) -> tuple[tuple[sp.Expr, ...], ...]:
    """The data points plus each shifted by 1/2, where functions are compared."""
    shifted = tuple(tuple(v + sp.Rational(1, 2) for v in row) for row in points)
    return tuple(dict.fromkeys(tuple(points) + shifted))


def _at_probes(expr: sp.Expr, columns: Sequence[sp.Symbol], probes: np.ndarray) -> np.ndarray:
    """An exact function rounded to float64 coefficients and evaluated at (V, m, d) probe rows.

    Irrational constants (a + b*sqrt(2) with huge a and b that nearly cancel, after many steps at an
    irrational rate) are first evaluated to 30 digits, so that rounding happens once, after cancellation.
    """
    if any(not a.free_symbols for a in expr.atoms(sp.Pow, sp.Function, sp.NumberSymbol)):
        from symreparam.reparam import decompose

        # N() is adaptive (it raises its working precision until the digits are right) only at the top
        # of an expression, so each constant coefficient is evaluated on its own.
        expr = sp.Add(*(sp.N(c, 30) * term for term, c in decompose(expr, columns).items()))
    values = compile_model(expr, columns, ())(_rows(probes), np.zeros((0,)))[0]
    return values.reshape(probes.shape[:2])


@quiet
def verify_model(
    problem: Problem,
    derivation: ModelDerivation,
    reparam: Reparameterisation | None,
    basis: Basis,
    coefficients: Sequence[Sequence[sp.Expr]],
) -> Verification:
    """Check one model of ``problem`` (every sample of a symbolic learning rate) and return the result.

    ``coefficients`` are the basis coefficients of the function at steps 0 and T. Raises
    :class:`VerificationError` when any discrepancy exceeds ``TOLERANCE``.
    """
    data = problem.data
    d = derivation
    lr_symbols = problem.lr_symbols
    samples = [{s: value for s in lr_symbols} for value in LR_SAMPLES] if lr_symbols else [{}]
    v = len(samples)
    columns = tuple(data.input_symbols) + tuple(lr_symbols)
    compiled = compile_model(d.model.expression, columns, d.model.params)

    def with_lr(rows):  # append the sample learning rate as extra input columns
        base = np.array([[exact_float(x) for x in row] for row in rows], dtype=float).reshape(
            len(rows), len(data.input_symbols))
        out = np.empty((v, len(rows), len(columns)))
        for i, subs in enumerate(samples):
            lr_cols = [exact_float(subs[s]) for s in lr_symbols]
            out[i] = np.hstack([base, np.tile(lr_cols, (len(rows), 1))]) if lr_cols else base
        return out

    probes_exact = _real_probes(compiled, data, d.initial, with_lr)
    probes = with_lr(probes_exact)
    x = with_lr(data.inputs)
    paths = [[tuple(sp.expand(w.xreplace(subs)) for w in step) for step in d.trajectory] if subs else d.trajectory
             for subs in samples]
    shift = np.array([[max(max((_bits(w) for w in step), default=0) - _BIG_BITS, 0) for step in path]
                      for path in paths], dtype=int)
    trajectory = np.array([[_scaled(step, int(shift[i, t])) for t, step in enumerate(path)]
                           for i, path in enumerate(paths)], dtype=float).reshape(v, len(d.trajectory), -1)
    if np.any(~np.isfinite(trajectory)):
        raise VerificationError(d.model.name, "the iterates exceed the float64 range and cannot be checked; "
                                "use fewer steps")
    final_shift = [int(x) for x in shift[:, -1]]

    def at(expr, scaled=False):
        # Substitute each sample learning rate exactly before rounding: a polynomial of degree 100 in
        # eta evaluated in float64 would lose everything to cancellation. Likewise divide exactly by
        # the power of two of a huge final iterate, or values beyond the float range become inf.
        if not lr_symbols and not (scaled and any(final_shift)):
            return _at_probes(expr, columns, probes)
        rows = []
        for i, subs in enumerate(samples):
            e = sp.expand(expr.xreplace(subs)) if subs else expr
            if scaled and final_shift[i]:
                e = sp.expand(e / sp.Integer(2) ** final_shift[i])
            rows.append(_at_probes(e, columns, probes[i:i + 1])[0])
        return np.stack(rows)

    def const(values, shape):
        return np.broadcast_to(np.array([exact_float(e) for e in values], dtype=float).reshape(shape), (v, *shape))

    n, p = data.size, len(d.model.params)
    k = len(basis.functions)
    basis_values = np.stack([at(f) for f in basis.functions], axis=-1) if k else np.zeros((v, len(probes_exact), 0))
    coef_final = np.array([_scaled([sp.expand(c.xreplace(subs)) for c in coefficients[-1]], s)
                           for subs, s in zip(samples, final_shift)], dtype=float).reshape(v, len(coefficients[-1]))
    exact = Exact(
        trajectory=trajectory,
        shift=shift,
        residuals=const(d.residuals, (n,)),
        jacobian=const(list(d.jacobian), (n, p)),
        gradient=const(d.gradient, (p,)),
        gram=const(list(d.gram), (n, n)),
        kernel=np.stack([at(kexpr) for kexpr in d.kernel], axis=-1),
        f_initial=at(d.function_initial),
        f_final=at(d.function_final, scaled=True),
        f_step=at(d.function_step),
        basis=basis_values,
        coef_initial=const(coefficients[0], (k,)),
        coef_final=coef_final,
        lambda_max=None if d.stability is None else const([d.stability.lambda_max], (1,))[:, 0],
        max_lr=None if d.stability is None else np.full(v, exact_float(d.stability.max_lr)),
        limit=None if d.limit is None else const(d.limit, (p,)),
        newton=None if not d.is_linear else (const(d.newton, (p,)) if d.newton is not None else np.full((v, p), np.nan)),
        A=None if reparam is None else const(list(reparam.A), (k, p)),
        b=None if reparam is None else const(list(reparam.b), (k,)),
        P=None if reparam is None else const(list(reparam.P), (k, k)),
    )
    w0 = np.broadcast_to(np.array([exact_float(w) for w in d.initial]), (v, p))
    case = Case(
        model=compiled,
        x=x,
        y=np.broadcast_to(np.array([exact_float(t) for t in data.targets]), (v, n)),
        w0=w0,
        lr=np.array([exact_float(problem.lr.xreplace(subs)) for subs in samples]),
        cprime=np.full(v, exact_float(loss_factor(problem))),
        probes=probes,
        linear=d.is_linear,
    )
    errors = check(case, exact)
    worst = {name: np.array([float(np.max(err))]) for name, err in errors.items()}
    return require(summarise(worst), d.model.name)


def _real_probes(compiled: CompiledModel, data, w0, with_lr) -> tuple[tuple[sp.Expr, ...], ...]:
    """The data points, plus shifted points where the model is real at the start (log(x) at x < 0 is not)."""
    candidates = _probes(data.inputs)
    values = compiled(with_lr(candidates)[0], np.array([exact_float(w) for w in w0]))[0]
    if not np.all(np.isfinite(values[: data.size])):
        # The exact values were checked to be finite reals when they were derived: this is float overflow.
        raise VerificationError("verification", "the model's values at the data exceed the float64 range (about "
                                "1e308), so the independent check cannot confirm the answer; rescale the problem")
    return tuple(c for i, c in enumerate(candidates) if i < data.size or np.isfinite(values[i]))
