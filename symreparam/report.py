"""The worked solution as a format-neutral outline: every line of the derivation, already written
by a :class:`~symreparam.printing.Printer`. Templates (LaTeX, Markdown) and the plain-text renderer
all read this one outline, so the formats cannot drift apart.
"""

from __future__ import annotations

import sympy as sp

from symreparam.derive import Note, loss_factor
from symreparam.printing import Printer
from symreparam.solution import ModelSolution, Solution
from symreparam.verify import TOLERANCE

# Above this many steps only the first and last few iterates are listed in documents, and above
# this many data points only the first few residuals and kernels (the JSON output has them all).
SHOWN_STEPS = 12
SHOWN_POINTS = 6


_SUM = r"\sum_{i=1}^{n}\bigl(f(x_i) - y_i\bigr)^2"
_LOSS_TEX = {"mse": r"L = \frac{1}{n}" + _SUM, "half-mse": r"L = \frac{1}{2n}" + _SUM, "sse": "L = " + _SUM}


def _eq(p: Printer, *parts: str) -> str:
    return " = ".join(parts)


def _point(p: Printer, solution: Solution, i: int, bare: bool = False) -> str:
    """Data point i's inputs: ``7``, or ``(1, 2)`` for several inputs (without parentheses if ``bare``)."""
    values = solution.problem.data.inputs[i]
    inner = ", ".join(p.expr(v) for v in values)
    return f"({inner})" if len(values) > 1 and not bare else inner


def _f_at(p: Printer, name: str, arg: str) -> str:
    return rf"{p.name(name)}\left({arg}\right)" if p.is_tex else f"{name}({arg})"


def _args(p: Printer, solution: Solution, grouped: bool = False) -> str:
    """The input names, ``x`` or ``x1, x2`` (``(x1, x2)`` when ``grouped`` as one argument)."""
    symbols = solution.problem.data.input_symbols
    inner = ", ".join(p.name(s) for s in symbols)
    return f"({inner})" if grouped and len(symbols) > 1 else inner


def note_text(p: Printer, note: Note) -> str:
    """A note from the derivation in words."""
    if note.kind == "nonlinear":
        return p.words(
            f"{note.get('model')} is not linear in its parameters, so its loss is not a quadratic in them: "
            "the largest stable learning rate, the limit and the Newton step are derived only for models "
            "linear in their parameters, and the function-space step is exact only to first order in the "
            "learning rate."
        )
    if note.kind == "newton-singular":
        rank, params, points = note.get("rank"), note.get("params"), note.get("points")
        why = (f": {points} data point{'s' if points != 1 else ''} cannot determine {params} parameters"
               if points < params else "")
        return p.words(
            f"The Hessian of the loss is singular (rank {rank} < {params} parameters{why}), "
            "so the Newton step is not defined."
        )
    if note.kind == "stability-no-closed-form":
        return p.words(
            f"The Hessian of {note.get('model')}'s loss has entries such as exp(1) and more than two non-zero "
            "eigenvalues, whose largest has no exact closed form, so the largest stable learning rate is not given."
        )
    raise ValueError(note.kind)


def model_outline(p: Printer, solution: Solution, ms: ModelSolution) -> dict:
    """Every step of one model's derivation, written by ``p``."""
    d = ms.derivation
    problem = solution.problem
    model = d.model
    n = problem.data.size
    cprime = loss_factor(problem)
    args = _args(p, solution)
    params = model.params
    # A compound rate (eta - 1) needs parentheses as a factor; 1/10 reads fine without them.
    lr = p.operand(problem.lr) if problem.lr.is_Add else p.expr(problem.lr)

    residuals = []
    for i, r in enumerate(d.residuals[:SHOWN_POINTS]):
        f_value = r + problem.data.targets[i]
        residuals.append(_eq(p, "r_{%d}" % (i + 1) if p.is_tex else f"r{i + 1}",
                             _f_at(p, model.name, _point(p, solution, i, bare=True)) + " - " + p.operand(problem.data.targets[i]),
                             p.expr(f_value) + " - " + p.operand(problem.data.targets[i]), p.expr(r)))
    partials = [_eq(p, p.partial(model.name, w), p.expr(sp.expand(dw))) for w, dw in zip(params, d.partials)]
    gradient = []
    for j, w in enumerate(params):
        terms = [p.operand(d.residuals[i]) + p.times + p.operand(d.jacobian[i, j]) for i in range(min(n, 5))]
        if n == 1:
            written = p.operand(cprime) + p.times + terms[0]
        elif n <= 4:
            joined = " + ".join(terms)
            written = p.operand(cprime) + p.times + (rf"\left({joined}\right)" if p.is_tex else f"({joined})")
        else:
            written = None
        parts = [p.partial("L", w)]
        if written is not None:
            parts.append(written)
        parts.append(p.expr(d.gradient[j]))
        gradient.append(_eq(p, *parts))
    arrow = r" \leftarrow " if p.is_tex else " <- "
    minus = " - "
    updates = []
    for j, w in enumerate(params):
        after = d.trajectory[1][j]
        updates.append(p.name(w) + arrow + p.expr(d.initial[j]) + minus + lr + p.times + p.operand(d.gradient[j])
                       + " = " + p.expr(after))
    steps = list(range(len(d.trajectory)))
    if len(steps) > SHOWN_STEPS + 1:
        half = SHOWN_STEPS // 2
        steps = steps[: half + 1] + [None] + steps[-half:]
    trajectory = [None if t is None else (t, [p.expr(v) for v in d.trajectory[t]]) for t in steps]

    stability = None
    if d.stability is not None:
        stability = {
            "lambda_max": p.expr(d.stability.lambda_max),
            "max_lr": p.expr(d.stability.max_lr),
            "behaviour": d.stability.behaviour,
            "at": _at(p, solution.problem.lr),
            "run": _run_note(p, d.stability),
            "reach": _reach(p, d.stability),
        }
    linear = None
    if ms.reparam is not None:
        linear = {"A": p.matrix(ms.reparam.A), "b": p.matrix(ms.reparam.b), "P": p.matrix(ms.reparam.P)}
    pair = _args(p, solution, grouped=True)
    kernel = [_eq(p, (rf"K\left({pair}, {_point(p, solution, i)}\right)" if p.is_tex
                      else f"K({pair}, {_point(p, solution, i)})"), p.expr(k))
              for i, k in enumerate(d.kernel[:SHOWN_POINTS])]
    if n > SHOWN_POINTS:
        more = r"\dots\ \text{(%d data points in all)}" % n if p.is_tex else f"... ({n} data points in all)"
        residuals.append(more)
        kernel.append(more)
    return {
        "name": model.name,
        "name_tex": p.name(model.name),
        "definition": _eq(p, _f_at(p, model.name, args), p.expr(model.expression)),
        "params": [p.name(w) for w in params],
        "initial": [_eq(p, p.name(w), p.expr(v)) for w, v in zip(params, d.initial)],
        "final": [_eq(p, p.name(w), p.expr(v)) for w, v in zip(params, d.final)],
        "residuals": residuals,
        "partials": partials,
        "gradient": gradient,
        "updates": updates,
        "trajectory": trajectory,
        "args": args,
        "function_initial": _eq(p, _f_at(p, model.name, args), p.expr(d.function_initial)),
        "function_final": _eq(p, _f_at(p, model.name, args), p.expr(d.function_final)),
        "kernel": kernel,
        "gram": p.matrix(d.gram) if n <= SHOWN_POINTS else (
            rf"\text{{a }} {n} \times {n} \text{{ matrix (all entries in the JSON output)}}" if p.is_tex
            else f"a {n} x {n} matrix (all entries in the JSON output)"),
        "function_step": p.expr(d.function_step),
        "is_linear": d.is_linear,
        "linear": linear,
        "stability": stability,
        "limit": None if d.limit is None else [_eq(p, p.name(w), p.expr(v)) for w, v in zip(params, d.limit)],
        "function_limit": None if d.function_limit is None else p.expr(d.function_limit),
        "newton": None if d.newton is None else [_eq(p, p.name(w), p.expr(v)) for w, v in zip(params, d.newton)],
        "function_newton": None if d.function_newton is None else p.expr(d.function_newton),
        "notes": [note_text(p, note) for note in d.notes],
        "max_rel_error": f"{ms.verification.max_rel_error:.2g}",
    }


def comparison_outline(p: Printer, solution: Solution) -> dict:
    """The coefficient-by-coefficient comparison and the conclusion in words."""
    comp = solution.comparison
    models = solution.models
    labels = comp.basis.labels
    rows = []
    for k, label in enumerate(labels):
        rows.append({
            "label": label,
            "basis": p.expr(comp.basis.functions[k]),
            "changes": [p.expr(m.changes[k]) for m in models],
            "ratios": [None if r[k] is None else p.expr(r[k]) for r in comp.ratios],
        })
    return {
        "labels": labels,
        "rows": rows,
        "same_class": comp.same_function_class,
        "same_start": comp.same_initial_function,
        "conclusion": conclusion(p, solution),
    }


def conclusion(p: Printer, solution: Solution) -> list[str]:
    """The insight in sentences: how far each coefficient moved, and why (P = A A^T)."""
    comp = solution.comparison
    models = solution.models
    out = []
    if len(models) > 1:
        for k, label in enumerate(comp.basis.labels):
            moves = [m.changes[k] for m in models]
            parts = [f"{p.math(p.expr(v))} in {p.math(p.name(m.name))}" for v, m in zip(moves, models)]
            sentence = p.words(f"The {label} moves ") + ", ".join(parts)
            ratios = [r[k] for r in comp.ratios[1:]]
            if all(r is not None for r in ratios):
                if all(r == 1 for r in ratios):
                    sentence += p.words(": the same in every model")
                else:
                    sentence += p.words(" (") + ", ".join(
                        f"{p.math(p.expr(r))} times {p.math(p.name(models[0].name))} in {p.math(p.name(m.name))}"
                        for r, m in zip(ratios, models[1:])) + p.words(")")
            out.append(sentence + p.words("."))
    if all(m.reparam is not None for m in models):
        theta = p.math(r"\theta = A w + b" if p.is_tex else "theta = A w + b")
        rule = p.math(r"\Delta\theta = -\eta\, P\, \nabla_\theta L" if p.is_tex else "delta theta = -lr * P * grad_theta L")
        out.append(
            p.words("Each model is linear in its parameters, ") + theta + p.words(", so one gradient step on ")
            + p.math("w") + p.words(" moves the coefficients by ") + rule + p.words(" with ")
            + p.math("P = A A^T" if not p.is_tex else "P = A A^{T}")
            + p.words(": gradient descent on the parameters is gradient descent on the function's coefficients, "
                      "preconditioned by P.")
        )
        if comp.same_initial_function and len(models) > 1:
            out.append(p.words(
                "The models start as the same function, so the gradient with respect to the coefficients is the "
                "same for all of them; only P differs, and P alone decides how far each coefficient moves."))
        if comp.same_function_class is False:
            out.append(p.words("The models do not span the same function class."))
    stab = [(m, m.derivation.stability) for m in models if m.derivation.stability is not None]
    if stab:
        parts = [(p.words("at any rate") if s.max_lr == sp.oo else p.words("for rates below ") + p.math(p.expr(s.max_lr)))
                 + p.words(" for ") + p.math(p.name(m.name))
                 + ("" if s.top_excited or s.max_lr_run == sp.oo else
                    p.words(" (from this start, for rates below ") + p.math(p.expr(s.max_lr_run)) + p.words(")"))
                 for m, s in stab]
        sentence = p.words("Gradient descent converges from every start ") + ", ".join(parts) + p.words(".")
        behaviours = {s.behaviour for _, s in stab}
        if len(behaviours) == 1 and None not in behaviours:
            at = _at(p, solution.problem.lr)
            sentence += p.words(" ") + at[:1].upper() + at[1:] + p.words(
                f" gradient descent {next(iter(behaviours))} for "
                f"{'both models' if len(stab) == 2 else 'every model' if len(stab) > 2 else 'this model'}.")
        else:
            for m, s in stab:
                if s.behaviour is not None:
                    sentence += p.words(" ") + p.math(p.name(m.name)) + p.words(f": {s.behaviour}.")
        out.append(sentence)
    return out


def _run_note(p: Printer, s) -> str | None:
    """What this start excites, where that is not every direction (None: the run feels the top one)."""
    if s.top_excited or s.lambda_max == 0:
        return None
    if s.lambda_run == 0:
        return p.words("the start is already a minimum (its gradient is zero), so it excites no direction")
    return (p.words("the top direction is not excited from this start: the largest eigenvalue it excites is ")
            + p.math(p.expr(s.lambda_run)) + p.words(", so this run converges for ")
            + p.math("0 < " + (r"\eta" if p.is_tex else "lr") + " < " + p.expr(s.max_lr_run)))


def _at(p: Printer, lr) -> str:
    """"at lr = 6/5", or "at any rate" for a symbolic rate (a run that stays put does so at every rate)."""
    if lr.free_symbols:
        return p.words("at any rate")
    return p.words("at ") + p.math((r"\eta" if p.is_tex else "lr") + " = " + p.expr(lr))


def _reach(p: Printer, s) -> str:
    """For which rates gradient descent from this start goes to the limit."""
    if s.max_lr_run == sp.oo:
        return p.words("already reached at the start, whatever the rate")
    rate = r"\eta" if p.is_tex else "lr"
    return p.words("reached for every ") + p.math(f"0 < {rate} < " + p.expr(s.max_lr_run))


def outline(p: Printer, solution: Solution) -> dict:
    """The whole worked solution for one printer."""
    problem = solution.problem
    data = problem.data
    names = [p.name(s) for s in data.input_symbols] + [p.name("y")]
    rows = [[p.expr(v) for v in row] + [p.expr(y)] for row, y in zip(data.inputs, data.targets)]
    return {
        "problem": {
            "models": [{
                "definition": _eq(p, _f_at(p, m.name, _args(p, solution)), p.expr(m.expression)),
                "initial": ", ".join(_eq(p, p.name(w), p.expr(v)) for w, v in zip(m.params, problem.initial_of(m))),
            } for m in problem.models],
            "columns": names,
            "rows": rows,
            "loss": problem.loss.value,
            "loss_description": problem.loss.description,
            "loss_name": problem.loss.description.split(",")[0],
            "loss_formula": _LOSS_TEX[problem.loss.value] if p.is_tex else problem.loss.description.split(", ")[1],
            "loss_factor": p.expr(loss_factor(problem)),
            "n": data.size,
            "lr": p.expr(problem.lr),
            "steps": problem.steps,
        },
        "models": [model_outline(p, solution, m) for m in solution.models],
        "comparison": comparison_outline(p, solution),
        "max_rel_error": f"{solution.max_rel_error:.2g}",
        "tolerance": f"{TOLERANCE:g}",
    }
