"""Independent float64 re-computation of the answers a typical mistake leads to.

A mistaken answer is shown to students (as the value a wrong method gives, in Moodle and in
``symreparam check``), so it is checked like every other number: the student's gradient descent is
run again in float64 from the model's own expression, with derivatives from the forward-mode chain
rule of :mod:`symreparam.numeric` (never SymPy's), and the recipe applied to those numbers.
Answers that only relabel correct ones (the parameter given for the slope, the first model's value
given for the second's) are compared with the float64 value of what they relabel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symreparam.malrules import MalRule, Recipe, student_partials
from symreparam.verify import Case, evaluate_at, relative_error


@dataclass(frozen=True)
class ModelFloats:
    """What the float re-computation of one model's mistaken paths needs, for V variants."""

    name: str
    params: tuple[str, ...]
    case: Case  # data (inputs then drawn constants), targets, w0, lr, c'
    n_inputs: int  # how many leading columns of case.x are data inputs
    queries: np.ndarray  # (V, Q, columns) query points, same columns as case.x
    A: np.ndarray | None  # (V, k, p), the exact reparameterisation in float64 (itself checked)
    b: np.ndarray | None  # (V, k)
    contents: np.ndarray | None  # (V, p): the constant factor of each partial derivative (chain-rule mistake)
    steps: int
    linear: bool


def content_floats(derivation, problem, constants: Sequence[sp.Symbol], values: np.ndarray) -> np.ndarray | None:
    """Per variant, the constant factors that the chain-rule mistake drops, as floats (None: nothing dropped)."""
    from symreparam.numeric import compile_model

    dropped = student_partials(derivation, problem, "no-constant")
    if dropped is None:
        return None
    out = []
    for full, student in zip(derivation.partials, dropped):
        factor = sp.cancel(full / student) if student != 0 else sp.Integer(1)
        fn = compile_model(sp.sympify(factor, strict=True), tuple(constants), ())
        out.append(fn(values, np.zeros(0))[0] if len(constants) else np.full(values.shape[0], float(factor)))
    return np.stack(out, axis=-1)


def student_run(mf: ModelFloats, recipe: Recipe, factor: np.ndarray, mask: Sequence[bool] | None,
                ids: Sequence[str]) -> dict[str, np.ndarray]:
    """The student's path of one model in float64, under the model-relative keys of
    :func:`~symreparam.answers.path_answers` (``w3.1``, ``grad.w3``, ``r.1.1``, ``coef.1.slope``, ...)."""
    case = mf.case
    v, n, _ = case.x.shape
    p = len(mf.params)
    f0, jac0 = evaluate_at(case, case.x, case.w0)
    if recipe.partials == "inputs-one":
        ones = case.x.copy()
        ones[:, :, : mf.n_inputs] = 1.0
        direction = lambda w: evaluate_at(case, ones, w)[1]  # noqa: E731
    elif recipe.partials == "no-constant" and mf.contents is not None:
        direction = lambda w: evaluate_at(case, case.x, w)[1] / mf.contents[:, None, :]  # noqa: E731
    else:
        direction = lambda w: evaluate_at(case, case.x, w)[1]  # noqa: E731
    keep = np.array(mask if mask is not None else [True] * p, dtype=float)
    rate = recipe.sign * case.lr ** recipe.lr_power * case.cprime * factor
    out: dict[str, np.ndarray] = {}
    g0 = direction(case.w0)
    grad = (case.cprime * factor)[:, None] * np.einsum("vnp,vn->vp", g0, f0 - case.y)
    for j, w in enumerate(mf.params):
        out[f"grad.{w}"] = grad[:, j]
    w = case.w0.copy()
    path = [w]
    for _ in range(mf.steps):
        f, _ = evaluate_at(case, case.x, w)
        w = w - rate[:, None] * keep[None, :] * np.einsum("vnp,vn->vp", direction(w), f - case.y)
        path.append(w)
    for t, wt in enumerate(path):
        for j, name in enumerate(mf.params):
            out[f"{name}.{t}"] = wt[:, j]
        f, _ = evaluate_at(case, case.x, wt)
        for i in range(n):
            out[f"r.{t}.{i + 1}"] = f[:, i] - case.y[:, i]
        if mf.A is not None:
            theta = np.einsum("vkp,vp->vk", mf.A, wt) + mf.b
            for kk, k in enumerate(ids):
                out[f"coef.{t}.{k}"] = theta[:, kk]
    if mf.A is not None:
        for k in ids:
            out[f"start.{k}"] = out[f"coef.0.{k}"]
            out[f"end.{k}"] = out[f"coef.{mf.steps}.{k}"]
            out[f"change.{k}"] = out[f"end.{k}"] - out[f"start.{k}"]
    for q in range(mf.queries.shape[1]):
        before = evaluate_at(case, mf.queries[:, q:q + 1], path[0])[0][:, 0]
        after = evaluate_at(case, mf.queries[:, q:q + 1], path[-1])[0][:, 0]
        out[f"fq.{q + 1}.start"], out[f"fq.{q + 1}.end"], out[f"fq.{q + 1}.change"] = before, after, after - before
    if n == 1 and mask is None:
        out["contraction"] = 1 - rate * np.einsum("vp,vp->v", jac0[:, 0], g0[:, 0])
        if recipe.partials == "exact" and recipe.sign == 1 and recipe.lr_power == 1:
            lam = case.cprime * np.einsum("vp,vp->v", jac0[:, 0], jac0[:, 0])
            out["lambda_max"] = lam * factor
            with np.errstate(divide="ignore"):
                out["max_lr"] = 2 / (lam * factor)
    return out


def mistake_error(rule: MalRule, words: Mapping[str, str], answers: Mapping[str, np.ndarray],
                  models: Sequence[ModelFloats], correct: Mapping[str, np.ndarray], ids: Sequence[str],
                  factor: np.ndarray) -> np.ndarray:
    """Largest relative discrepancy, per variant, between a mistake's exact answers (as floats) and
    their float64 re-computation."""
    v = models[0].case.x.shape[0]
    worst = np.zeros(v)
    first = models[0].name
    floats: dict[str, np.ndarray] = {}
    if rule.recipe is not None:
        mask_for = {}
        if rule.per_parameter:
            model = next(m for m in models if m.name == words["model"])
            mask_for[model.name] = [w == words["param"] for w in model.params]
            runs = [model]
        else:
            runs = list(models)
        for mf in runs:
            for key, value in student_run(mf, rule.recipe, factor, mask_for.get(mf.name), ids).items():
                floats[f"{mf.name}.{key}"] = value
    for key, exact in answers.items():
        if rule.recipe is not None:
            if key.startswith("ratio."):
                _, m, k = key.split(".", 2)
                moved = floats.get(f"{m}.change.{k}", correct.get(f"{m}.change.{k}"))
                base = floats.get(f"{first}.change.{k}", correct.get(f"{first}.change.{k}"))
                numeric = moved / base
            else:
                numeric = floats[key]
        elif rule.report == "parameter-for-coefficient":
            m, kind, rest = key.split(".", 2) if not key.startswith("ratio.") else ("", "ratio", key)
            w = words["param"]
            steps = next(mf.steps for mf in models if mf.name == words["model"])
            value_at = lambda t: correct[f"{words['model']}.{w}.{t}"]  # noqa: E731
            if kind == "coef":
                numeric = value_at(int(rest.split(".")[0]))
            elif kind == "start":
                numeric = value_at(0)
            elif kind == "end":
                numeric = value_at(steps)
            elif kind == "change":
                numeric = value_at(steps) - value_at(0)
            else:
                k = key.split(".")[-1]
                numeric = (value_at(steps) - value_at(0)) / correct[f"{first}.change.{k}"]
        elif rule.report == "same-as-first-model":
            numeric = np.ones(v) if key.startswith("ratio.") else correct[first + key[len(words["model"]):]]
        else:  # stable-rate-without-2
            numeric = correct[key] / 2
        scale = _scale(key, floats, correct, models)
        worst = np.maximum(worst, relative_error(np.asarray(exact)[:, None], np.asarray(numeric)[:, None], scale))
    return worst


def _scale(key: str, floats, correct, models) -> np.ndarray | float | None:
    """The size a quantity that is exactly zero should be compared at (a difference, a residual)."""
    parts = key.split(".")
    if len(parts) < 2:
        return None
    m, kind = parts[0], parts[1]
    values = {**correct, **floats}
    if kind == "r":
        model = next((mf for mf in models if mf.name == m), None)
        return None if model is None else np.max(np.abs(model.case.y), axis=1)
    if kind == "contraction":
        return 1.0
    if kind == "change" and f"{m}.start.{parts[2]}" in values:
        return np.maximum(np.abs(values[f"{m}.start.{parts[2]}"]), np.abs(values.get(f"{m}.end.{parts[2]}", 0.0)))
    if kind == "fq" and parts[-1] == "change":
        base = ".".join(parts[:3])
        return np.maximum(np.abs(values.get(f"{base}.start", 0.0)), np.abs(values.get(f"{base}.end", 0.0)))
    return None
