"""Every exact result of an analysis under a name, its answer key (``f2.w3.1`` is w3 after step 1).

The keys are what exercise families ask for, what templates show, what the manifest records and what
a student's answer is checked against (the README lists them). The keys that follow from a model's
path (its parameters at every step and its first gradient) are computed by :func:`path_answers` for
any path, so a student's mistaken path (:mod:`symreparam.malrules`) gives its answers under the same
keys as the worked solution.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import sympy as sp

from symreparam.derive import ModelDerivation, loss_factor
from symreparam.problem import Problem
from symreparam.reparam import Basis, coefficients, decompose
from symreparam.solution import Analysis


def mistake_key(mistake_id: str, key: str) -> str:
    """Where a typical mistake's value of answer ``key`` is kept among a batch's values."""
    return f"{_MISTAKE_PREFIX}{mistake_id}.{key}"


_MISTAKE_PREFIX = "mal."


def is_mistake_key(key: str) -> bool:
    """Whether a batch's value ``key`` is a typical mistake's (see :func:`mistake_key`), not an answer."""
    return key.startswith(_MISTAKE_PREFIX)


def basis_ids(basis: Basis) -> tuple[str, ...]:
    """Key-safe names of the basis functions: slope, bias, or the function's text (x**2 -> x_2)."""
    out = []
    for label, fun in zip(basis.labels, basis.functions):
        if label in ("slope", "bias"):
            out.append(label)
        else:
            out.append(re.sub(r"[^A-Za-z0-9]+", "_", sp.sstr(fun)).strip("_"))
    return tuple(out)


@dataclass(frozen=True)
class Descent:
    """One run of gradient descent on one model: its parameters at steps 0..T and the gradient of
    the loss it computed at the start (the worked solution's, or a student's mistaken one)."""

    trajectory: tuple[tuple[sp.Expr, ...], ...]
    gradient: tuple[sp.Expr, ...]


def correct_path(d: ModelDerivation) -> Descent:
    """The worked solution's run of one model."""
    return Descent(d.trajectory, d.gradient)


def _coefficients(analysis: Analysis, index: int, values: Sequence[sp.Expr]) -> tuple[sp.Expr, ...] | None:
    """Basis coefficients of a model at ``values``: theta = A w + b, or read off the function (None when it
    has terms outside the basis, as a non-linear model can at parameters off its own path)."""
    reparam = analysis.reparams[index]
    if reparam is not None:
        # theta = A w + b, written out: a Matrix product would re-simplify every entry
        a, b = reparam.A, reparam.b
        return tuple(sp.expand(sp.Add(b[k], *(a[k, j] * w for j, w in enumerate(values) if a[k, j] != 0)))
                     for k in range(a.rows))
    d = analysis.derivations[index]
    inputs = analysis.problem.data.input_symbols
    function = d.function_at(values)
    if set(decompose(function, inputs)) - set(analysis.basis.functions):
        return None
    return coefficients(function, analysis.basis, inputs)


def path_answers(analysis: Analysis, paths: Sequence[Descent]) -> dict[str, sp.Expr]:
    """The answers that follow from each model's path: ``{m}.{w}.{t}``, ``{m}.grad.{w}``, ``{m}.r.{t}.{i}``,
    ``{m}.coef.{t}.{k}``, ``{m}.start|end|change.{k}``, ``{m}.fq.{q}.start|end|change`` and ``ratio.{m}.{k}``.
    """
    problem = analysis.problem
    data = problem.data
    ids = basis_ids(analysis.basis)
    out: dict[str, sp.Expr] = {}
    changes: list[tuple[sp.Expr, ...] | None] = []
    for index, (d, path) in enumerate(zip(analysis.derivations, paths)):
        m = d.model.name
        names = [w.name for w in d.model.params]
        coefs = []  # basis coefficients after every step, for a linear reparameterisation
        for t, step in enumerate(path.trajectory):
            for w, value in zip(names, step):
                out[f"{m}.{w}.{t}"] = value
            if d.is_linear:
                # residual of an affine model at any w: J (w - w0) + r0
                for i, r in enumerate(d.residuals):
                    moved = sp.Add(*(d.jacobian[i, j] * (step[j] - d.initial[j]) for j in range(len(names))))
                    out[f"{m}.r.{t}.{i + 1}"] = r + moved
            if analysis.reparams[index] is not None:
                coefs.append(_coefficients(analysis, index, step))
                for k, c in zip(ids, coefs[-1]):
                    out[f"{m}.coef.{t}.{k}"] = c
        for w, g in zip(names, path.gradient):
            out[f"{m}.grad.{w}"] = g
        if coefs:
            start, end = coefs[0], coefs[-1]
        else:
            start = _coefficients(analysis, index, path.trajectory[0])
            end = _coefficients(analysis, index, path.trajectory[-1])
        if start is not None and end is not None:
            change = tuple(sp.expand(b - a) for a, b in zip(start, end))
            changes.append(change)
            for k, a, b, c in zip(ids, start, end, change):
                out[f"{m}.start.{k}"] = a
                out[f"{m}.end.{k}"] = b
                out[f"{m}.change.{k}"] = c
        else:
            changes.append(None)
        if problem.queries:
            before = d.function_at(path.trajectory[0])
            after = d.function_at(path.trajectory[-1])
            for q, point in enumerate(problem.queries, 1):
                at = dict(zip(data.input_symbols, point))
                out[f"{m}.fq.{q}.start"] = before.xreplace(at)
                out[f"{m}.fq.{q}.end"] = after.xreplace(at)
                out[f"{m}.fq.{q}.change"] = sp.expand(out[f"{m}.fq.{q}.end"] - out[f"{m}.fq.{q}.start"])
    first = changes[0]
    for d, change in zip(analysis.derivations[1:], changes[1:]):
        if first is None or change is None:
            continue
        for k, base, moved in zip(ids, first, change):
            if base != 0:
                out[f"ratio.{d.model.name}.{k}"] = sp.cancel(moved / base)
    return out


def answer_expressions(analysis: Analysis) -> dict[str, sp.Expr]:
    """Every answer of the analysis under its key (see the README for the list)."""
    problem = analysis.problem
    data = problem.data
    inputs = data.input_symbols
    ids = basis_ids(analysis.basis)
    out = path_answers(analysis, [correct_path(d) for d in analysis.derivations])
    phi = [[f.xreplace(data.substitution(i)) for f in analysis.basis.functions] for i in range(data.size)]
    for d, reparam in zip(analysis.derivations, analysis.reparams):
        m = d.model.name
        names = [w.name for w in d.model.params]
        for i in range(data.size):
            for j, w in enumerate(names):
                out[f"{m}.J.{i + 1}.{w}"] = d.jacobian[i, j]
        for i in range(data.size):
            for j in range(data.size):
                out[f"{m}.gram.{i + 1}.{j + 1}"] = d.gram[i, j]
        for q, point in enumerate(problem.queries, 1):
            at = dict(zip(inputs, point))
            for i, kernel in enumerate(d.kernel, 1):
                out[f"{m}.kq.{q}.{i}"] = kernel.xreplace(at)
        if d.is_linear:
            for w, feature in zip(names, d.form.features):
                for k, c in zip(ids, coefficients(feature, analysis.basis, inputs)):
                    out[f"{m}.feature.{w}.{k}"] = c
            for k, c in zip(ids, coefficients(d.form.offset, analysis.basis, inputs)):
                out[f"{m}.offset.{k}"] = c
            for i, kernel in enumerate(d.kernel, 1):
                for k, c in zip(ids, coefficients(kernel, analysis.basis, inputs)):
                    out[f"{m}.kernel.{i}.{k}"] = c
            for k, c in zip(ids, coefficients(d.function_step, analysis.basis, inputs)):
                out[f"{m}.step.{k}"] = c
            cprime = loss_factor(problem)
            for kk, k in enumerate(ids):
                out[f"{m}.gtheta.{k}"] = sp.expand(cprime * sp.Add(*(phi[i][kk] * d.residuals[i]
                                                                    for i in range(data.size))))
            for key, value in _linear_step_answers(problem, d).items():
                out[f"{m}.{key}"] = value
        if reparam is not None:
            for a_row, k in enumerate(ids):
                out[f"{m}.b.{k}"] = reparam.b[a_row]
                for j, w in enumerate(names):
                    out[f"{m}.A.{k}.{w}"] = reparam.A[a_row, j]
                for l_col, l in enumerate(ids):
                    out[f"{m}.P.{k}.{l}"] = reparam.P[a_row, l_col]
        if d.stability is not None:
            out[f"{m}.lambda_max"] = d.stability.lambda_max
            out[f"{m}.max_lr"] = d.stability.max_lr
            # what one step multiplies the error along the steepest direction by: |.| < 1 converges
            out[f"{m}.contraction"] = sp.expand(1 - problem.lr * d.stability.lambda_max)
        if d.limit is not None:
            for w, v in zip(names, d.limit):
                out[f"{m}.limit.{w}"] = v
            for k, c in zip(ids, coefficients(d.function_limit, analysis.basis, inputs)):
                out[f"{m}.limit_coef.{k}"] = c
        if d.newton is not None:
            for w, v, w0 in zip(names, d.newton, d.initial):
                out[f"{m}.newton.{w}"] = v
                out[f"{m}.newton_move.{w}"] = sp.expand(v - w0)
            for k, c in zip(ids, coefficients(d.function_newton, analysis.basis, inputs)):
                out[f"{m}.newton_coef.{k}"] = c
    return out


def _linear_step_answers(problem: Problem, d: ModelDerivation) -> dict[str, sp.Expr]:
    """The Hessian H = c' J^T J of the loss in w, one step as the affine map w -> M w + v, and the
    leading principal minors of (2/lr) I - H, all positive exactly when gradient descent converges
    (0 < lr < 2 / lambda_max), which a family can demand even where lambda_max itself is irrational."""
    names = [w.name for w in d.model.params]
    p = len(names)
    jac = sp.Matrix(d.jacobian)
    hessian = (loss_factor(problem) * jac.T * jac).applyfunc(sp.expand)
    step = sp.eye(p) - problem.lr * hessian
    after = sp.Matrix(d.trajectory[1])
    offset = after - step * sp.Matrix(d.initial)
    margin = 2 / problem.lr * sp.eye(p) - hessian
    out: dict[str, sp.Expr] = {}
    for i, w in enumerate(names):
        for j, u in enumerate(names):
            out[f"H.{w}.{u}"] = hessian[i, j]
            out[f"M.{w}.{u}"] = sp.expand(step[i, j])
        out[f"v.{w}"] = sp.expand(offset[i])
    for k in range(1, p + 1):
        out[f"margin.{k}"] = sp.factor(margin[:k, :k].det(method="berkowitz"))
    return out
