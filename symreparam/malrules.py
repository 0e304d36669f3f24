"""The typical mistakes of this topic, as data: each one a change to the worked solution's derivation.

A mistake in the gradient step is a :class:`Recipe`: the factor in front of the loss's gradient, the
sign of the update, the power of the learning rate, how the partial derivatives are taken, and which
parameters are updated. Following a recipe is the same exact gradient descent as the worked solution,
so a mistaken path gives its answers under the same keys (:mod:`symreparam.answers`). Mistakes in
reporting a result (the parameter where the slope was asked, 1/lambda for 2/lambda) map answers to
answers. A new mistake is one entry of :data:`RULES`.

Everything here is exact and works with drawn quantities as symbols: an exercise family derives each
mistake's answers once, like its correct ones. With symbols, the arithmetic runs in the field of
rational functions of them, where answers are compared and simplified for free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from symreparam.answers import Descent, basis_ids, correct_path, path_answers
from symreparam.derive import MAX_NUMBER_BITS, ModelDerivation, loss_factor, nonlinear_trajectory
from symreparam.errors import ProblemError
from symreparam.parse import rational_bits
from symreparam.problem import Loss, Problem
from symreparam.solution import Analysis

_N = sp.Symbol("n")  # stands for the number of data points in a recipe's factor

# A decimal answer is accepted within this relative distance of the exact one (0.5%: three significant
# figures are enough); no typical mistake may land that close to a right answer.
RELATIVE_TOLERANCE = 0.005
ABSOLUTE_TOLERANCE = 1e-9


def tolerance(exact):
    """The absolute tolerance around an exact value (floats or NumPy arrays of floats)."""
    import numpy as np

    return np.maximum(RELATIVE_TOLERANCE * np.abs(np.asarray(exact, dtype=float)), ABSOLUTE_TOLERANCE)


def bands_overlap(a, b):
    """Whether the tolerance bands around two values meet: a rounded answer could then be taken for
    either, so a mistake's value must keep its band clear of the right answer's."""
    import numpy as np

    return np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) <= tolerance(a) + tolerance(b)


@dataclass(frozen=True)
class Recipe:
    """How a student's gradient step differs from w <- w - lr * c' * sum_i r_i df/dw(x_i)."""

    factor: sp.Expr = sp.Integer(1)  # multiplies c' (a wrong loss convention); may use n
    sign: int = 1  # -1: the gradient added instead of subtracted
    lr_power: int = 1  # 0: the learning rate left out; 2: applied twice
    partials: str = "exact"  # "exact" | "no-constant" (chain-rule factor dropped) | "inputs-one" (x left out)

    def factor_at(self, n: int) -> sp.Rational:
        """The factor for n data points, as an exact number."""
        return sp.Rational(self.factor.xreplace({_N: sp.Integer(n)}))


@dataclass(frozen=True)
class MalRule:
    """A named typical mistake: what the student did, why it is wrong, and where the paths part.

    ``step`` names the line of the worked solution where the student's path leaves it (gradient,
    chain rule, update, answer, stability). ``applies`` says for which loss convention (by name) and
    number of data points the mistake can happen at all.
    """

    name: str
    title: str
    why: str
    step: str
    recipe: Recipe | None = None
    per_parameter: bool = False  # one instance per parameter: "updated only w3"
    report: str | None = None  # "parameter-for-coefficient" | "stable-rate-without-2"
    applies: Callable[[str, int], bool] = lambda loss, n: True


RULES: tuple[MalRule, ...] = (
    MalRule("half-mse", "used half the mean squared error",
            "the loss is the mean of (f - y)^2, and differentiating the square brings down a factor 2; "
            "leaving it out (as for half the MSE) halves every gradient and every step",
            "gradient", Recipe(factor=sp.Rational(1, 2)), applies=lambda loss, n: loss == "mse"),
    MalRule("mse-for-half-mse", "used the full mean squared error",
            "the loss is half the mean squared error, whose 1/2 cancels the 2 from the square; keeping "
            "that 2 doubles every gradient and every step",
            "gradient", Recipe(factor=sp.Integer(2)), applies=lambda loss, n: loss == "half-mse"),
    MalRule("sum-for-mean", "summed the squared errors instead of averaging them",
            "the mean divides by the number of data points n; a sum makes every gradient n times too large",
            "gradient", Recipe(factor=_N), applies=lambda loss, n: loss != "sse" and n > 1),
    MalRule("chain-rule-factor", "forgot the chain-rule factor of the reparameterisation",
            "in a term such as c*w*x the derivative with respect to w is c*x: the constant c stays as a "
            "factor; dropping it treats c*w as if it were the parameter itself",
            "chain rule", Recipe(partials="no-constant")),
    MalRule("x-left-out", "left the data point's x out of the gradient",
            "the derivative of w*x with respect to w is x, so that parameter's gradient carries each "
            "point's x times its residual; leaving x out uses 1 instead",
            "gradient", Recipe(partials="inputs-one")),
    MalRule("gradient-ascent", "added the gradient instead of subtracting it",
            "gradient descent moves against the gradient, w <- w - lr * dL/dw; adding it moves every "
            "parameter uphill and increases the loss",
            "update", Recipe(sign=-1)),
    MalRule("lr-omitted", "left out the learning rate",
            "each parameter moves by the learning rate times its gradient; without it the step is "
            "1/lr times too long",
            "update", Recipe(lr_power=0)),
    MalRule("lr-twice", "applied the learning rate twice",
            "the step is the learning rate times the gradient, once; multiplying by the rate again makes "
            "it lr times too short",
            "update", Recipe(lr_power=2)),
    MalRule("only-one-updated", "updated only {param}",
            "one step changes every parameter at once, each by its own gradient; here only {param} moved "
            "and the others kept their starting values",
            "update", Recipe(), per_parameter=True),
    MalRule("parameter-for-coefficient", "gave the parameter {param} where the {label} was asked",
            "in {model} the {label} is {factor} times {param}, not {param} itself; multiply the parameter by "
            "{factor} to get the {label}",
            "answer", report="parameter-for-coefficient"),
    MalRule("same-as-first-model", "treated {model} as if it were {first}",
            "the models start as the same function, but gradient descent moves the parameters, not the "
            "function: with P = A A^T different for {model}, so are its step, its kernel, its stable rate and "
            "where it converges",
            "reparameterisation", report="same-as-first-model"),
    MalRule("stable-rate-without-2", "used 1/lambda for the largest stable rate",
            "one step multiplies the error along the steepest direction by 1 - lr * lambda, which stays "
            "between -1 and 1 exactly when 0 < lr < 2/lambda, not 1/lambda",
            "stability", report="stable-rate-without-2"),
)

RULES_BY_NAME: Mapping[str, MalRule] = {r.name: r for r in RULES}


@dataclass(frozen=True)
class Mistake:
    """One instance of a rule in one problem, with the answers it leads to under their keys.

    ``words`` fill the rule's title and explanation (the parameter, the model, the coefficient's label
    and factor) and tell instances of one rule apart.
    """

    rule: MalRule
    answers: Mapping[str, sp.Expr]
    words: tuple[tuple[str, str], ...] = ()
    # the same answers as elements of the field of rational functions of the drawn symbols (families)
    raw: Mapping[str, object] | None = None

    @property
    def id(self) -> str:
        """A unique name: the rule's, followed by the model, parameter and coefficient it concerns."""
        parts = [value for key, value in self.words if key in ("model", "param", "label")]
        return self.rule.name + (":" + ".".join(parts) if parts else "")

    @property
    def title(self) -> str:
        """The rule's title with this instance's words filled in."""
        return self.rule.title.format(**dict(self.words))

    @property
    def why(self) -> str:
        """The rule's explanation with this instance's words filled in."""
        return self.rule.why.format(**dict(self.words))

    def applies(self, loss: str, n: int) -> bool:
        """Whether the mistake can happen with this loss convention and number of points."""
        return self.rule.applies(loss, n)


def loss_name(problem: Problem) -> str | None:
    """The loss convention by name, or None when it is a drawn symbol (decided per variant)."""
    return None if problem.loss_scale is not None else problem.loss.value


class _Numbers:
    """Exact arithmetic for one problem: SymPy numbers, or the field of rational functions of its symbols."""

    def __init__(self, problem: Problem) -> None:
        symbols = tuple(problem.constants) + tuple(problem.lr_symbols)
        self.field = None
        if symbols:
            from symreparam.exactvec import field_of

            self.field = field_of(symbols)

    def __call__(self, value: sp.Expr):
        if self.field is None:
            return sp.sympify(value, strict=True)
        return self.field.from_expr(value)

    def expr(self, value) -> sp.Expr:
        if self.field is not None:
            return value.as_expr()
        return value if value.is_Rational else sp.expand(value)

    def differs(self, a, b) -> bool:
        if self.field is not None:
            return a != b
        if a.is_Rational and b.is_Rational:
            return a != b
        return sp.expand(a - b) != 0


def _content(expr: sp.Expr, variables) -> sp.Expr:
    """The constant factor of a single product term (c in c*x), or 1 for a sum or a bare term."""
    if expr.is_Add or expr == 0:
        return sp.Integer(1)
    coeff, _ = expr.as_independent(*variables, as_Add=False)
    return coeff if coeff not in (0, 1, -1) else sp.Integer(1)


def student_partials(d: ModelDerivation, problem: Problem, how: str) -> tuple[sp.Expr, ...] | None:
    """The partial derivatives as the student takes them (None when the mistake changes nothing here)."""
    inputs = problem.data.input_symbols
    if how == "no-constant":
        variables = (*inputs, *d.model.params)
        contents = [_content(p, variables) for p in d.partials]
        if all(c == 1 for c in contents):
            return None
        return tuple(sp.expand(p / c) for p, c in zip(d.partials, contents))
    if how == "inputs-one":
        if not any(p.free_symbols & set(inputs) for p in d.partials):
            return None
        ones = {s: sp.Integer(1) for s in inputs}
        return tuple(p.xreplace(ones) for p in d.partials)
    return tuple(d.partials)


def recipe_rate(problem: Problem, recipe: Recipe) -> sp.Expr:
    """The factor in front of sum_i r_i G(x_i) in the student's update (the learning rate times c')."""
    factor = recipe.factor_at(problem.data.size)
    return recipe.sign * problem.lr ** recipe.lr_power * loss_factor(problem) * factor


def _too_big(values) -> bool:
    return any(v.is_Rational and rational_bits(v) > MAX_NUMBER_BITS
               for v in values if isinstance(v, sp.Basic))


@dataclass(frozen=True)
class _Linear:
    """One linear model's data in the problem's exact arithmetic, for fast repeated paths."""

    jac: list[list]
    residuals: list
    w0: list
    c: list  # c' for the gradient
    features_at_queries: list[list]  # phi_j(x_q)
    offset_at_queries: list
    a: list[list] | None  # A, over the basis
    b: list | None


class _Paths:
    """Students' paths through one problem, computed in its exact arithmetic."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.problem = analysis.problem
        self.num = _Numbers(self.problem)
        self.ids = basis_ids(analysis.basis)
        self.linear: list[_Linear | None] = []
        num = self.num
        problem = self.problem
        for d, reparam in zip(analysis.derivations, analysis.reparams):
            if not d.is_linear:
                self.linear.append(None)
                continue
            queries = [dict(zip(problem.data.input_symbols, q)) for q in problem.queries]
            self.linear.append(_Linear(
                jac=[[num(e) for e in row] for row in d.jacobian.tolist()],
                residuals=[num(r) for r in d.residuals],
                w0=[num(w) for w in d.initial],
                c=[num(loss_factor(problem))],
                features_at_queries=[[num(f.xreplace(q)) for f in d.form.features] for q in queries],
                offset_at_queries=[num(d.form.offset.xreplace(q)) for q in queries],
                a=[[num(e) for e in row] for row in reparam.A.tolist()] if reparam is not None else None,
                b=[num(e) for e in reparam.b] if reparam is not None else None,
            ))

    def path(self, index: int, recipe: Recipe, mask=None) -> dict[str, object] | None:
        """Answers of one model along the student's path (in the problem's arithmetic), or None when the
        recipe changes nothing for this model or its path is too large to be a useful answer."""
        d = self.analysis.derivations[index]
        problem = self.problem
        partials = student_partials(d, problem, recipe.partials)
        if partials is None:
            return None
        if self.linear[index] is None:
            return self._nonlinear(index, recipe, partials, mask)
        lin = self.linear[index]
        num = self.num
        points = [problem.data.substitution(i) for i in range(problem.data.size)]
        g = [[num(p.xreplace(pt)) for p in partials] for pt in points]
        p = len(d.model.params)
        keep = mask or [True] * p
        rate = num(recipe_rate(problem, recipe))
        factor = num(recipe.factor_at(problem.data.size))
        w = list(lin.w0)
        m = d.model.name
        names = [s.name for s in d.model.params]
        out: dict[str, object] = {}
        for j, name in enumerate(names):
            out[f"{m}.grad.{name}"] = lin.c[0] * factor * sum((g[i][j] * lin.residuals[i] for i in range(len(g))),
                                                              num(sp.Integer(0)))
        trajectory = [list(w)]
        for _ in range(problem.steps):
            r = [lin.residuals[i] + sum((lin.jac[i][j] * (w[j] - lin.w0[j]) for j in range(p)), num(sp.Integer(0)))
                 for i in range(len(g))]
            w = [w[j] - rate * sum((g[i][j] * r[i] for i in range(len(g))), num(sp.Integer(0))) if keep[j] else w[j]
                 for j in range(p)]
            if num.field is None and _too_big(w):
                return None
            trajectory.append(list(w))
        for t, step in enumerate(trajectory):
            for name, value in zip(names, step):
                out[f"{m}.{name}.{t}"] = value
            for i in range(len(g)):
                out[f"{m}.r.{t}.{i + 1}"] = lin.residuals[i] + sum(
                    (lin.jac[i][j] * (step[j] - lin.w0[j]) for j in range(p)), num(sp.Integer(0)))
            if lin.a is not None:
                for k, row, off in zip(self.ids, lin.a, lin.b):
                    out[f"{m}.coef.{t}.{k}"] = sum((a * v for a, v in zip(row, step)), off)
        if lin.a is not None:
            for k in self.ids:
                out[f"{m}.start.{k}"] = out[f"{m}.coef.0.{k}"]
                out[f"{m}.end.{k}"] = out[f"{m}.coef.{problem.steps}.{k}"]
                out[f"{m}.change.{k}"] = out[f"{m}.end.{k}"] - out[f"{m}.start.{k}"]
        for q, (phis, off) in enumerate(zip(lin.features_at_queries, lin.offset_at_queries), 1):
            before = sum((a * v for a, v in zip(phis, trajectory[0])), off)
            after = sum((a * v for a, v in zip(phis, trajectory[-1])), off)
            out[f"{m}.fq.{q}.start"], out[f"{m}.fq.{q}.end"], out[f"{m}.fq.{q}.change"] = before, after, after - before
        if problem.data.size == 1 and d.stability is not None and mask is None:
            # one step multiplies the single residual by 1 - rate * J . G
            out[f"{m}.contraction"] = 1 - rate * sum((a * b for a, b in zip(lin.jac[0], g[0])), num(sp.Integer(0)))
            if recipe.partials == "exact" and recipe.sign == 1 and recipe.lr_power == 1:
                out[f"{m}.lambda_max"] = num(d.stability.lambda_max) * factor
                if d.stability.max_lr != sp.oo:
                    out[f"{m}.max_lr"] = num(d.stability.max_lr) / factor
        return out

    def _nonlinear(self, index: int, recipe: Recipe, partials, mask) -> dict[str, object] | None:
        """A model that is not linear in its parameters (only in concrete problems): exact substitution."""
        d = self.analysis.derivations[index]
        problem = self.problem
        try:
            trajectory = nonlinear_trajectory(problem, d.model, d.partials, d.initial,
                                              recipe_rate(problem, recipe), student_partials=partials, mask=mask)
        except ProblemError:
            return None
        factor = recipe.factor_at(problem.data.size)
        points = [problem.data.substitution(i) for i in range(problem.data.size)]
        at_w0 = dict(zip(d.model.params, d.initial))
        gradient = tuple(sp.expand(loss_factor(problem) * factor * sp.Add(*(
            r * p.xreplace({**pt, **at_w0}) for r, pt in zip(d.residuals, points)))) for p in partials)
        paths = [correct_path(x) for x in self.analysis.derivations]
        paths[index] = Descent(trajectory, gradient)
        m = d.model.name
        # The basis coefficients of a non-linear model off its own path are not checked in float64 (there
        # is no A to map parameters to them), so they are not offered: parameters, gradients and values at
        # query points are.
        return {k: v for k, v in path_answers(self.analysis, paths).items()
                if k.startswith(f"{m}.") and k.split(".")[1] not in ("start", "end", "change", "coef")}


def mistakes(analysis: Analysis, correct: Mapping[str, sp.Expr], keys: Sequence[str] | None = None
             ) -> tuple[Mistake, ...]:
    """Every applicable mistake with the answers (under ``keys``, or all it can change) that it changes.

    ``correct`` holds the worked solution's answers (:func:`~symreparam.answers.answer_expressions`).
    Rules that depend on the loss convention apply when the problem's loss is that one; for a loss
    drawn per variant (a symbol) both are derived, and :meth:`Mistake.applies` decides per variant.
    """
    problem = analysis.problem
    loss = loss_name(problem)
    n = problem.data.size
    paths = _Paths(analysis)
    num = paths.num
    wanted = set(correct) if keys is None else {k for k in keys if k in correct}
    # The worked solution's own path in the same arithmetic: converting its large SymPy forms back
    # would cost far more than walking the path again.
    converted: dict[str, object] = {}
    for index, lin in enumerate(paths.linear):
        if lin is not None:
            converted.update(paths.path(index, Recipe()) or {})
    converted = {k: v for k, v in _with_ratios(converted, paths, lambda key: converted[key],
                                                analysis.derivations[0].model.name).items()}

    def right(key: str):
        if key not in converted:
            converted[key] = num(correct[key])
        return converted[key]

    out: list[Mistake] = []

    def keep(rule: MalRule, answers: Mapping[str, object], **words: str) -> None:
        changed = {k: v for k, v in answers.items() if k in wanted and num.differs(v, right(k))}
        if changed:
            ordered = dict(sorted(changed.items()))
            out.append(Mistake(rule, {k: num.expr(v) for k, v in ordered.items()}, tuple(words.items()),
                               ordered if num.field is not None else None))

    first = analysis.derivations[0].model.name
    for rule in RULES:
        if rule.recipe is not None:
            if (loss is not None and not rule.applies(loss, n)) or \
                    (loss is None and not any(rule.applies(name.value, n) for name in Loss)):
                continue
            if rule.per_parameter:
                for index, d in enumerate(analysis.derivations):
                    params = d.model.params
                    for j, w in enumerate(params if len(params) > 1 else ()):
                        answers = paths.path(index, rule.recipe, mask=[k == j for k in range(len(params))])
                        if answers is not None:
                            keep(rule, _with_ratios(answers, paths, right, first), model=d.model.name, param=w.name)
                continue
            answers: dict[str, object] = {}
            for index in range(len(analysis.derivations)):
                answers.update(paths.path(index, rule.recipe) or {})
            if answers:
                keep(rule, _with_ratios(answers, paths, right, first))
        elif rule.report == "parameter-for-coefficient":
            for answers, words in _parameter_for_coefficient(analysis, paths, right, first):
                keep(rule, answers, **words)
        elif rule.report == "same-as-first-model":
            for d in analysis.derivations[1:]:
                keep(rule, _as_first_model(d.model.name, first, correct, wanted, num),
                     model=d.model.name, first=first)
        elif rule.report == "stable-rate-without-2":
            keep(rule, {f"{d.model.name}.max_lr": num(d.stability.max_lr / 2) for d in analysis.derivations
                        if d.stability is not None and d.stability.max_lr != sp.oo})
    return tuple(out)


# Answers about the function rather than the parameters, which a model could share with the first one.
_FUNCTION_KEYS = ("start", "end", "change", "coef", "limit_coef", "newton_coef", "fq", "kq", "gram", "kernel",
                  "step", "lambda_max", "max_lr", "contraction", "r", "P")


def _as_first_model(model: str, first: str, correct, wanted, num) -> dict:
    """Each function-level answer of ``model`` replaced by the first model's (a ratio of moves by 1)."""
    out: dict[str, object] = {}
    for key in wanted:
        if key.startswith(f"ratio.{model}."):
            out[key] = num(sp.Integer(1))
        elif key.startswith(f"{model}.") and key.split(".")[1] in _FUNCTION_KEYS:
            other = first + key[len(model):]
            if other in correct:
                out[key] = num(correct[other])
    return out


def _with_ratios(answers: dict, paths: _Paths, right, first: str) -> dict:
    """Add ratio.{m}.{k}: each later model's change over the first model's, both along this path
    (a model the mistake does not touch keeps its correct change)."""
    out = dict(answers)
    for d in paths.analysis.derivations[1:]:
        m = d.model.name
        for k in paths.ids:
            key = f"ratio.{m}.{k}"
            base_key, moved_key = f"{first}.change.{k}", f"{m}.change.{k}"
            try:
                base = out[base_key] if base_key in out else right(base_key)
                moved = out[moved_key] if moved_key in out else right(moved_key)
            except KeyError:
                continue
            if base != 0:
                out[key] = moved / base
    return out


def _parameter_for_coefficient(analysis: Analysis, paths: _Paths, right, first: str):
    """A basis coefficient reported as the one parameter behind it (w3 where the slope 10*w3 was asked)."""
    num = paths.num
    for index, (d, reparam) in enumerate(zip(analysis.derivations, analysis.reparams)):
        if reparam is None:
            continue
        m = d.model.name
        for row, k in enumerate(paths.ids):
            columns = [j for j in range(reparam.A.cols) if reparam.A[row, j] != 0]
            if len(columns) != 1:
                continue
            j = columns[0]
            factor = reparam.A[row, j]
            if factor == 1 and reparam.b[row] == 0:
                continue
            w = d.model.params[j]
            steps = len(d.trajectory) - 1
            answers: dict[str, object] = {f"{m}.coef.{t}.{k}": num(d.trajectory[t][j]) for t in range(steps + 1)}
            answers[f"{m}.start.{k}"] = answers[f"{m}.coef.0.{k}"]
            answers[f"{m}.end.{k}"] = answers[f"{m}.coef.{steps}.{k}"]
            answers[f"{m}.change.{k}"] = answers[f"{m}.end.{k}"] - answers[f"{m}.start.{k}"]
            if index > 0:
                try:
                    base = right(f"{first}.change.{k}")
                except KeyError:
                    base = 0
                if base != 0:
                    answers[f"ratio.{m}.{k}"] = answers[f"{m}.change.{k}"] / base
            yield answers, {"model": m, "param": w.name, "label": analysis.basis.labels[row],
                            "factor": sp.sstr(factor)}
