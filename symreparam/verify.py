"""Independent float64 re-computation of every exact result, and the discrepancy it finds.

The check never reuses a SymPy derivative: gradients come from :mod:`symreparam.numeric` (forward-mode
chain rule on the model as written), eigenvalues from ``numpy.linalg.eigvalsh``, limits from
``numpy.linalg.pinv``. Each GD step is checked from the exact previous iterate, so float rounding does
not accumulate over many steps; iterates beyond the float range are compared after an exact rescaling
by a power of two (possible because for linear models the step is an affine map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symreparam.derive import ModelDerivation, loss_factor
from symreparam.errors import VerificationError
from symreparam.numeric import CompiledModel, compile_model, exact_float
from symreparam.problem import Problem
from symreparam.reparam import Basis, Reparameterisation

TOLERANCE = 1e-8
# Sample learning rates substituted into answers that are functions of a symbolic rate.
LR_SAMPLES = (sp.Rational(1, 10), sp.Rational(1, 1000))
_TINY = 1e-300
_BIG_BITS = 900  # beyond about 2**900 we rescale before converting to float


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


def relative_error(exact: Sequence[float], approx: Sequence[float], scale: float | None = None) -> float:
    """max |exact - approx| / max(|exact|, scale): relative to the size of the whole quantity."""
    exact = np.asarray(exact, dtype=float).ravel()
    approx = np.asarray(approx, dtype=float).ravel()
    if exact.size == 0:
        return 0.0
    if not (np.all(np.isfinite(exact)) and np.all(np.isfinite(approx))):
        return float("inf")
    size = max(float(np.max(np.abs(exact))), float(np.max(np.abs(approx))), scale or 0.0, _TINY)
    return float(np.max(np.abs(exact - approx))) / size


def _floats(values: Sequence[sp.Expr], shift: int = 0) -> np.ndarray:
    """Exact values divided by 2**shift, as floats."""
    if shift == 0:
        return np.array([exact_float(v) for v in values], dtype=float)
    scale = sp.Integer(2) ** shift
    return np.array([exact_float(v / scale) for v in values], dtype=float)


def _bits(values: Sequence[sp.Expr]) -> int:
    """log2 of the largest magnitude among exact rationals (0 for other values)."""
    best = 0
    for v in values:
        if v.is_Rational and v != 0:
            best = max(best, abs(v.p).bit_length() - abs(v.q).bit_length())
    return best


@dataclass(frozen=True)
class _Context:
    """What every check of one model needs."""

    problem: Problem
    derivation: ModelDerivation
    model: CompiledModel
    x_data: np.ndarray
    y_data: np.ndarray
    probes: tuple[tuple[sp.Expr, ...], ...]
    x_probes: np.ndarray
    affine: tuple[np.ndarray, np.ndarray] | None  # (f(x_i; 0), J) for linear models


def verify_model(
    problem: Problem,
    derivation: ModelDerivation,
    reparam: Reparameterisation | None,
    basis: Basis,
    coefficients: Sequence[Sequence[sp.Expr]],
) -> Verification:
    """Re-compute everything about one model in float64 and report the discrepancies.

    ``coefficients`` are the basis coefficients of the function at steps 0 and T. Raises
    :class:`VerificationError` when any discrepancy exceeds ``TOLERANCE``.
    """
    data = problem.data
    inputs = data.input_symbols
    model = derivation.model
    compiled = compile_model(model.expression, inputs, model.params)
    x_data = np.array([[exact_float(v) for v in row] for row in data.inputs], dtype=float).reshape(data.size, -1)
    y_data = np.array([exact_float(v) for v in data.targets])
    probes = _probes(data.inputs)
    x_probes = np.array([[exact_float(v) for v in row] for row in probes], dtype=float).reshape(len(probes), -1)
    affine = _affine(compiled, x_data, _floats(derivation.initial)) if derivation.is_linear else None
    ctx = _Context(problem, derivation, compiled, x_data, y_data, probes, x_probes, affine)
    checks = [*_initial_checks(ctx), *_trajectory_checks(ctx), *_function_checks(ctx, basis, coefficients)]
    if derivation.is_linear:
        checks.extend(_linear_checks(ctx, reparam, basis))
    result = Verification(tuple(checks))
    bad = [c for c in checks if not c.max_rel_error <= TOLERANCE]
    if bad:
        worst = max(bad, key=lambda c: c.max_rel_error)
        raise VerificationError(
            model.name,
            f"the float64 re-computation of {worst.name} disagrees with the exact result (relative error "
            f"{worst.max_rel_error:.3g} > {TOLERANCE:g}); the answer is withheld. The problem may be too "
            "ill-conditioned to check in floating point; please report it if it is not",
        )
    return result


def _affine(model: CompiledModel, x: np.ndarray, w0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f(x; 0) and the constant Jacobian of a model classed as linear, after checking in float64 that it is.

    Were the structural linearity test wrong, the affine shortcut in the step checks would hide it;
    comparing f and J at w = 0 and at w0 catches that.
    """
    f_zero, jac = model(x, np.zeros_like(w0))
    f_w0, jac_w0 = model(x, w0)
    err = max(relative_error(jac, jac_w0), relative_error(f_w0, f_zero + jac @ w0))
    if not err <= TOLERANCE:
        raise VerificationError("verification", f"the model is not affine in its parameters in float64 ({err:.3g})")
    return f_zero, jac


def _probes(points: Sequence[Sequence[sp.Expr]]) -> tuple[tuple[sp.Expr, ...], ...]:
    """The data points plus each shifted by 1/2, where functions are compared."""
    shifted = tuple(tuple(v + sp.Rational(1, 2) for v in row) for row in points)
    return tuple(dict.fromkeys(tuple(points) + shifted))


def _lr_cases(problem: Problem) -> list[dict[sp.Symbol, sp.Expr]]:
    """Substitutions that make the learning rate a number."""
    symbols = problem.lr_symbols
    if not symbols:
        return [{}]
    return [{s: value for s in symbols} for value in LR_SAMPLES]


def _initial_checks(ctx: _Context) -> list[Check]:
    d = ctx.derivation
    w0 = _floats(d.initial)
    f, jac = ctx.model(ctx.x_data, w0)
    r = f - ctx.y_data
    cprime = exact_float(loss_factor(ctx.problem))
    grad = cprime * jac.T @ r
    return [
        Check("the residuals at initialisation", relative_error(_floats(d.residuals), r, np.max(np.abs(ctx.y_data)))),
        Check("the Jacobian df/dw at the data", relative_error(_floats(list(d.jacobian)), jac)),
        Check("the gradient at initialisation", relative_error(_floats(d.gradient), grad)),
        Check("the tangent-kernel Gram matrix", relative_error(_floats(list(d.gram)), jac @ jac.T)),
    ]


def _trajectory_checks(ctx: _Context) -> list[Check]:
    """Each exact step against one float GD step from the exact previous iterate."""
    d = ctx.derivation
    problem = ctx.problem
    cprime = exact_float(loss_factor(problem))
    worst = 0.0
    for subs in _lr_cases(problem):
        lr = exact_float(problem.lr.xreplace(subs))
        path = [tuple(sp.expand(v.xreplace(subs)) for v in w) for w in d.trajectory] if subs else d.trajectory
        for before, after in zip(path, path[1:]):
            shift = max(_bits(before), _bits(after)) - _BIG_BITS
            if shift > 0 and ctx.affine is None:
                raise VerificationError(
                    d.model.name, "the iterates exceed the float64 range and this model is not linear, so they "
                    "cannot be checked; use fewer steps")
            shift = max(shift, 0)
            u = _floats(before, shift)
            exact_next = _floats(after, shift)
            if not (np.all(np.isfinite(u)) and np.all(np.isfinite(exact_next))):
                raise VerificationError(
                    d.model.name, "the iterates exceed the float64 range and cannot be checked; use fewer steps")
            grad = cprime * _scaled_gradient(ctx, u, shift)
            predicted = u - lr * grad
            size = max(float(np.max(np.abs(u))), float(np.max(np.abs(lr * grad))))
            worst = max(worst, relative_error(exact_next, predicted, size))
    return [Check("every gradient-descent step", worst)]


def _scaled_gradient(ctx: _Context, u: np.ndarray, shift: int) -> np.ndarray:
    """grad L(w) / 2**shift for w = u * 2**shift (residuals summed, not yet times c')."""
    if ctx.affine is None:
        f, jac = ctx.model(ctx.x_data, u)
        return jac.T @ (f - ctx.y_data)
    # Linear model: f(w) = J w + f(0), so f(w)/s = J u + f(0)/s exactly.
    f_zero, jac = ctx.affine
    residual = jac @ u + (f_zero - ctx.y_data) / 2.0**shift
    return jac.T @ residual


def _function_values(ctx: _Context, expr: sp.Expr, subs=None) -> tuple[np.ndarray, np.ndarray]:
    """An exact function of the inputs evaluated at the probe points (mask: where it is finite and real).

    The exact coefficients are rounded to float64 once and the expression is evaluated in float64,
    which is accurate to rounding and far cheaper than exact evaluation of large rationals.
    """
    if subs:
        expr = expr.xreplace(subs)
    compiled = compile_model(expr, ctx.problem.data.input_symbols, ())
    values = compiled(ctx.x_probes, np.zeros(0))[0]
    return values, np.isfinite(values)


def _function_checks(ctx: _Context, basis: Basis, coefficients) -> list[Check]:
    d = ctx.derivation
    problem = ctx.problem
    checks = []
    basis_values = _basis_at(ctx, basis)
    worst_f = worst_c = worst_k = worst_step = 0.0
    n_data = ctx.x_data.shape[0]
    w0 = _floats(d.initial)
    f0_num, jac_probe = ctx.model(ctx.x_probes, w0)
    _, jac_data = ctx.model(ctx.x_data, w0)
    r0 = ctx.model(ctx.x_data, w0)[0] - ctx.y_data
    cprime = exact_float(loss_factor(problem))
    kernel_num = jac_probe @ jac_data.T  # (probes, data)
    for i, k_expr in enumerate(d.kernel):
        exact, mask = _function_values(ctx, k_expr)
        _require_data(mask, n_data, "the tangent kernel")
        worst_k = max(worst_k, relative_error(exact[mask], kernel_num[mask, i]))
    for subs in _lr_cases(problem):
        lr = exact_float(problem.lr.xreplace(subs))
        for label, w, expr, coeffs in (("initial", d.initial, d.function_initial, coefficients[0]),
                                       ("final", d.final, d.function_final, coefficients[-1])):
            w_exact = [v.xreplace(subs) for v in w]
            shift = max(_bits(w_exact) - _BIG_BITS, 0)
            numeric = _scaled_function(ctx, _floats(w_exact, shift), shift)
            scale = sp.Integer(2) ** shift
            exact, mask = _function_values(ctx, sp.expand(expr / scale) if shift else expr, subs)
            _require_data(mask, n_data, f"the {label} function")
            worst_f = max(worst_f, relative_error(exact[mask], numeric[mask]))
            from_basis = basis_values @ _floats([c.xreplace(subs) for c in coeffs], shift)
            worst_c = max(worst_c, relative_error(from_basis[mask], numeric[mask]))
        exact, mask = _function_values(ctx, d.function_step, subs)
        predicted = f0_num - lr * cprime * kernel_num @ r0
        _require_data(mask, n_data, "the function-space step")
        worst_step = max(worst_step, relative_error(exact[mask], predicted[mask], float(np.max(np.abs(f0_num)))))
    checks.append(Check("the function before and after", worst_f))
    checks.append(Check("the basis coefficients", worst_c))
    checks.append(Check("the tangent kernel K(x, x_i)", worst_k))
    checks.append(Check("the function-space form of the step", worst_step))
    return checks


def _require_data(mask: np.ndarray, n_data: int, what: str) -> None:
    if not np.all(mask[:n_data]):
        raise VerificationError("verification", f"{what} is not a finite real number at every data point")


def _scaled_function(ctx: _Context, u: np.ndarray, shift: int) -> np.ndarray:
    """f(x; w) / 2**shift at the probes for w = u * 2**shift."""
    if shift == 0:
        return ctx.model(ctx.x_probes, u)[0]
    f_zero, jac = ctx.model(ctx.x_probes, np.zeros_like(u))
    return jac @ u + f_zero / 2.0**shift


def _basis_at(ctx: _Context, basis: Basis) -> np.ndarray:
    """Basis functions at the probes, evaluated independently (probes x basis)."""
    inputs = ctx.problem.data.input_symbols
    cols = []
    for fun in basis.functions:
        compiled = compile_model(sp.sympify(fun, strict=True), inputs, ())
        cols.append(compiled(ctx.x_probes, np.zeros(0))[0])
    return np.column_stack(cols)


def _linear_checks(ctx: _Context, reparam: Reparameterisation | None, basis: Basis) -> list[Check]:
    d = ctx.derivation
    checks = []
    w0 = _floats(d.initial)
    f0, jac = ctx.model(ctx.x_data, w0)
    r0 = f0 - ctx.y_data
    cprime = exact_float(loss_factor(ctx.problem))
    hessian = cprime * jac.T @ jac
    if d.stability is not None:
        lam = float(np.max(np.linalg.eigvalsh(hessian))) if hessian.size else 0.0
        exact_lam = exact_float(d.stability.lambda_max)
        checks.append(Check("the largest Hessian eigenvalue", relative_error([exact_lam], [lam])))
        if lam > 0:
            checks.append(Check("the largest stable learning rate",
                                relative_error([exact_float(d.stability.max_lr)], [2.0 / lam])))
    if d.limit is not None:
        numeric = w0 - np.linalg.pinv(jac) @ r0
        checks.append(Check("the limit of gradient descent", relative_error(_floats(d.limit), numeric,
                                                                             float(np.max(np.abs(w0))))))
    if d.newton is not None:
        numeric = w0 - np.linalg.solve(jac.T @ jac, jac.T @ r0)
        checks.append(Check("the Newton step", relative_error(_floats(d.newton), numeric, float(np.max(np.abs(w0))))))
    if reparam is not None:
        phi = _basis_at(ctx, basis)
        f_zero, jac_probe = ctx.model(ctx.x_probes, np.zeros(len(w0)))
        a = np.array([[exact_float(v) for v in row] for row in reparam.A.tolist()], dtype=float)
        b = np.array([exact_float(v) for v in reparam.b], dtype=float)
        p = np.array([[exact_float(v) for v in row] for row in reparam.P.tolist()], dtype=float)
        checks.append(Check("the reparameterisation A", relative_error(phi @ a, jac_probe)))
        checks.append(Check("the offset b", relative_error(phi @ b, f_zero, float(np.max(np.abs(jac_probe))))))
        checks.append(Check("the preconditioner P = A A^T", relative_error(p, a @ a.T)))
    return checks
