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
from symreparam.verify import Case, evaluate_sized, relative_error, residuals_sized


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
                ids: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The student's path of one model in float64, under the model-relative keys of
    :func:`~symreparam.answers.path_answers` (``w3.1``, ``grad.w3``, ``r.1.1``, ``coef.1.slope``, ...),
    and for each key the size of the terms it was computed from (the scale of
    :func:`~symreparam.verify.relative_error`, as in the worked solution's check)."""
    case = mf.case
    v, n, _ = case.x.shape
    p = len(mf.params)

    def at(points, w, w_size=None):
        return evaluate_sized(case, points, w, w_size)

    if recipe.partials == "inputs-one":
        ones = case.x.copy()
        ones[:, :, : mf.n_inputs] = 1.0

        def direction(w, w_size=None):
            e = at(ones, w, w_size)
            return e.jacobian, e.jacobian_size
    elif recipe.partials == "no-constant" and mf.contents is not None:
        def direction(w, w_size=None):
            e = at(case.x, w, w_size)
            contents = mf.contents[:, None, :]
            return e.jacobian / contents, e.jacobian_size / np.abs(contents)
    else:
        def direction(w, w_size=None):
            e = at(case.x, w, w_size)
            return e.jacobian, e.jacobian_size
    keep = np.array(mask if mask is not None else [True] * p, dtype=float)
    rate = recipe.sign * case.lr ** recipe.lr_power * case.cprime * factor
    out: dict[str, np.ndarray] = {}
    size: dict[str, np.ndarray] = {}
    start = at(case.x, case.w0)
    jac0 = start.jacobian
    g0, s_g0 = direction(case.w0)
    r0, s_r0 = residuals_sized(case, start)
    grad = (case.cprime * factor)[:, None] * np.einsum("vnp,vn->vp", g0, r0)
    s_grad = np.abs(case.cprime * factor)[:, None] * np.einsum("vnp,vn->vp", s_g0, s_r0)
    for j, w in enumerate(mf.params):
        out[f"grad.{w}"], size[f"grad.{w}"] = grad[:, j], s_grad[:, j]
    # the path is computed in float64, so each iterate carries the size of the terms it came from
    w, s_w = case.w0.copy(), np.abs(case.w0)
    path, path_size = [w], [s_w]
    for _ in range(mf.steps):
        r, s_r = residuals_sized(case, at(case.x, w, s_w))
        d, s_d = direction(w, s_w)
        move = rate[:, None] * keep[None, :] * np.einsum("vnp,vn->vp", d, r)
        s_move = np.abs(rate)[:, None] * keep[None, :] * np.einsum("vnp,vn->vp", s_d, s_r)
        w, s_w = w - move, s_w + s_move
        path.append(w)
        path_size.append(s_w)
    for t, (wt, st) in enumerate(zip(path, path_size)):
        for j, name in enumerate(mf.params):
            out[f"{name}.{t}"], size[f"{name}.{t}"] = wt[:, j], st[:, j]
        r, s_r = residuals_sized(case, at(case.x, wt, st))
        for i in range(n):
            out[f"r.{t}.{i + 1}"], size[f"r.{t}.{i + 1}"] = r[:, i], s_r[:, i]
        if mf.A is not None:
            theta = np.einsum("vkp,vp->vk", mf.A, wt) + mf.b
            s_theta = np.einsum("vkp,vp->vk", np.abs(mf.A), st) + np.abs(mf.b)
            for kk, k in enumerate(ids):
                out[f"coef.{t}.{k}"], size[f"coef.{t}.{k}"] = theta[:, kk], s_theta[:, kk]
    if mf.A is not None:
        for k in ids:
            for which, t in (("start", 0), ("end", mf.steps)):
                out[f"{which}.{k}"], size[f"{which}.{k}"] = out[f"coef.{t}.{k}"], size[f"coef.{t}.{k}"]
            out[f"change.{k}"] = out[f"end.{k}"] - out[f"start.{k}"]
            size[f"change.{k}"] = size[f"end.{k}"] + size[f"start.{k}"]
    for q in range(mf.queries.shape[1]):
        before, after = (at(mf.queries[:, q:q + 1], w, s) for w, s in ((path[0], path_size[0]), (path[-1], path_size[-1])))
        key = f"fq.{q + 1}"
        out[f"{key}.start"], size[f"{key}.start"] = before.value[:, 0], before.size[:, 0]
        out[f"{key}.end"], size[f"{key}.end"] = after.value[:, 0], after.size[:, 0]
        out[f"{key}.change"] = after.value[:, 0] - before.value[:, 0]
        size[f"{key}.change"] = after.size[:, 0] + before.size[:, 0]
    if n == 1 and mask is None:
        out["contraction"] = 1 - rate * np.einsum("vp,vp->v", jac0[:, 0], g0[:, 0])
        size["contraction"] = 1 + np.abs(rate) * np.einsum("vp,vp->v", start.jacobian_size[:, 0], s_g0[:, 0])
        if recipe.partials == "exact" and recipe.sign == 1 and recipe.lr_power == 1:
            lam = case.cprime * np.einsum("vp,vp->v", jac0[:, 0], jac0[:, 0])
            out["lambda_max"] = lam * factor
            with np.errstate(divide="ignore"):
                out["max_lr"] = 2 / (lam * factor)
    return out, size


def mistake_error(rule: MalRule, words: Mapping[str, str], answers: Mapping[str, np.ndarray],
                  models: Sequence[ModelFloats], correct: Mapping[str, np.ndarray], ids: Sequence[str],
                  factor: np.ndarray) -> np.ndarray:
    """Largest relative discrepancy, per variant, between a mistake's exact answers (as floats) and
    their float64 re-computation."""
    v = models[0].case.x.shape[0]
    worst = np.zeros(v)
    first = models[0].name
    floats: dict[str, np.ndarray] = {}
    scales: dict[str, np.ndarray] = {}
    if rule.recipe is not None:
        mask_for = {}
        if rule.per_parameter:
            model = next(m for m in models if m.name == words["model"])
            mask_for[model.name] = [w == words["param"] for w in model.params]
            runs = [model]
        else:
            runs = list(models)
        for mf in runs:
            values, value_sizes = student_run(mf, rule.recipe, factor, mask_for.get(mf.name), ids)
            for key, value in values.items():
                floats[f"{mf.name}.{key}"] = value
                if key in value_sizes:
                    scales[f"{mf.name}.{key}"] = value_sizes[key]
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
        scale = scales.get(key, _scale(key, correct, models))
        worst = np.maximum(worst, relative_error(np.asarray(exact)[:, None], np.asarray(numeric)[:, None], scale))
    return worst


def _scale(key: str, correct, models) -> np.ndarray | float | None:
    """The size at which a relabelled right answer is compared (a residual, a difference of two
    right answers); a mistaken path's own quantities carry their sizes from :func:`student_run`."""
    parts = key.split(".")
    if len(parts) < 2:
        return None
    m, kind = parts[0], parts[1]
    if kind == "r":
        model = next((mf for mf in models if mf.name == m), None)
        return None if model is None else np.max(np.abs(model.case.y), axis=1)
    if kind == "contraction":
        return 1.0
    if kind == "change" and f"{m}.start.{parts[2]}" in correct:
        return np.maximum(np.abs(correct[f"{m}.start.{parts[2]}"]), np.abs(correct.get(f"{m}.end.{parts[2]}", 0.0)))
    if kind == "fq" and parts[-1] == "change":
        base = ".".join(parts[:3])
        return np.maximum(np.abs(correct.get(f"{base}.start", 0.0)), np.abs(correct.get(f"{base}.end", 0.0)))
    return None
