"""What a homework template sees of one variant: exact answers written as LaTeX, computed on demand.

Templates call small helpers (``N('f2.w3.1')`` is w3 after step 1 in LaTeX) and read per-model views
(``m.updates``). Everything is formatted from exact (numerator, denominator) pairs by the fast
writers of :mod:`symreparam.printing`, and only what a template uses is ever formatted.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from math import gcd

import sympy as sp

from symreparam.printing import tex, tex_combination, tex_operand, tex_rational, text_rational
from symreparam.program import Batch, ModelShape, loss_scale

_LOSS_WORDS = {"mse": "mean squared error", "half-mse": "half mean squared error", "sse": "sum of squared errors"}
_LOSS_TEX = {"mse": r"\frac{1}{n}\sum_{i=1}^{n}\bigl(f(x_i) - y_i\bigr)^2",
             "half-mse": r"\frac{1}{2n}\sum_{i=1}^{n}\bigl(f(x_i) - y_i\bigr)^2",
             "sse": r"\sum_{i=1}^{n}\bigl(f(x_i) - y_i\bigr)^2"}


class cached_property:  # noqa: N801 - used like functools.cached_property
    """functools.cached_property without its lock (Python 3.11 takes an RLock on every first access):
    views are made and used by one thread, thousands of times per run."""

    def __init__(self, function):
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


@lru_cache(maxsize=256)
def _name_tex(name: str) -> str:
    return tex(sp.Symbol(name))


def _aligned(line: str) -> str:
    """``lhs = rhs`` as ``lhs &= rhs`` for an align* environment (a line without a relation is left alone)."""
    eq, arrow = line.find(" = "), line.find(" \\leftarrow ")
    at = arrow if eq < 0 else eq if arrow < 0 else min(eq, arrow)
    if at < 0:
        return line
    return line[:at + 1] + "&" + line[at + 1:]


@lru_cache(maxsize=64)
def _cprime(loss: str, n: int) -> str:
    """c' in dL/dw = c' sum_i r_i df/dw(x_i) for a loss name and n points, as LaTeX: twice the loss's scale."""
    p, q = loss_scale(loss, n)
    g = gcd(2 * p, q)
    return tex_rational(2 * p // g, q // g)


# Per batch: where the views' numbers live, found once per batch (see _plan).
_PLANS: "weakref.WeakKeyDictionary[Batch, dict]" = weakref.WeakKeyDictionary()


def _plan(plans: dict, key: tuple, build):
    """``build()``, made once per batch (``plans`` is the batch's entry in ``_PLANS``) and ``key``: the
    columns a view reads, in the shape it walks them. Every variant's view then only indexes lists,
    instead of formatting answer keys and looking them up. Keys are the strings the answer keys are
    formatted from, so equal keys mean equal columns."""
    try:
        return plans[key]
    except KeyError:
        plan = plans[key] = build()
        return plan


def _decimal(n: int, d: int) -> str:
    """A plain decimal for pgfplots coordinates (figures only; every printed number stays exact)."""
    return f"{n / d:.6g}"


class Table:
    """A read-only mapping computed on demand.

    Templates index it (``n['f2.w3.1']``) rather than call a helper (``N('f2.w3.1')``): Jinja wraps
    every call in bookkeeping that costs more than formatting the number.
    """

    __slots__ = ("_get",)

    def __init__(self, get):
        self._get = get

    def __getitem__(self, key: str) -> str:
        return self._get(key)


class VariantView:
    """One variant of a batch, as template helpers."""

    def __init__(self, batch: Batch, position: int, meta: dict):
        self.batch = batch
        self.v = position
        self.program = batch.program
        self.meta = meta
        self.columns = batch.columns
        self.plans = _PLANS.setdefault(batch, {})
        self.n = Table(self.N)
        self.p = Table(self.P)
        self.f = Table(lambda key: self.F(*key.split(".", 1)))
        self.sign = Table(self._sign)
        self.behaviour = Table(self._behaviour)

    # -- numbers ----------------------------------------------------------------------------------------
    def fraction(self, key: str) -> tuple[int, int]:
        """(numerator, denominator) of an answer key or a drawn name."""
        nums, dens = self.column(key)
        return nums[self.v], dens[self.v]

    def column(self, key: str) -> tuple[list[int], list[int]]:
        """Numerators and denominators of an answer key or a drawn name over the batch's variants."""
        try:
            return self.columns[key]
        except KeyError:
            raise KeyError(f"no answer or drawn value called {key!r}") from None

    def N(self, key: str) -> str:
        """LaTeX of an exact value."""
        nums, dens = self.columns[key]
        return tex_rational(nums[self.v], dens[self.v])

    def P(self, key: str) -> str:
        """LaTeX of an exact value as a factor (negative values in parentheses)."""
        nums, dens = self.columns[key]
        return tex_operand(nums[self.v], dens[self.v])

    def T(self, key: str) -> str:
        """Plain text of an exact value (``12/5``)."""
        return text_rational(*self.fraction(key))

    def D(self, key: str) -> str:
        """A decimal approximation, for figure coordinates only."""
        return _decimal(*self.fraction(key))

    def _behaviour(self, model: str) -> str:
        """What gradient descent does from this variant's start at its learning rate for ``model``,
        decided exactly by the engine from the variant's Jacobian and residuals (a start that excites
        only smaller eigen-directions can converge above the largest stable rate)."""
        from symreparam.derive import behaviour_at, stability_of

        shape = next(m for m in self.program.models if m.name == model)
        n = len(self.batch.data)
        rational = lambda key: sp.Rational(*self.fraction(key))  # noqa: E731
        residuals = [rational(f"{model}.r.0.{i}") for i in range(1, n + 1)]
        jacobian = sp.ImmutableMatrix([[rational(f"{model}.J.{i}.{w}") for w in shape.params] for i in range(1, n + 1)])
        if n == 1:
            # One point: H = c' J^T J has one non-zero eigenvalue, excited unless the start fits (or the
            # loss is flat), so the family's own max_lr decides, without the engine's Krylov basis.
            if residuals[0] == 0 or not any(jacobian):
                return "stays put"
            return behaviour_at(rational("lr"), rational(f"{model}.max_lr"))
        scale = loss_scale(self.loss, n)
        return stability_of(jacobian, residuals, 2 * sp.Rational(*scale), rational("lr")).behaviour

    def _sign(self, key: str) -> int:
        """-1, 0 or 1."""
        n, _ = self.fraction(key)
        return (n > 0) - (n < 0)

    def F(self, model: str, which: str) -> str:
        """A model's function as LaTeX from its basis coefficients (which: start, end, step, limit_coef, ...)."""
        v = self.v
        return tex_combination([(nums[v], dens[v], mono) for (nums, dens), mono in self._coefficients(model, which)])

    def _coefficients(self, model: str, which: str) -> list:
        """[(column, basis monomial in LaTeX)] of a model's function ``which``."""
        prog = self.program
        return _plan(self.plans, ("function", str(model), str(which)), lambda: [
            (self.column(f"{model}.{which}.{k}"), mono) for k, mono in zip(prog.basis_ids, prog.basis_tex)])

    def K(self, model: str, i: int) -> str:
        """The tangent kernel K(x, x_i) as a function of x."""
        return self.F(model, f"kernel.{i}")

    def plot(self, model: str, which: str) -> str:
        """A pgfplots expression of a function (exact fractions; pgfplots evaluates them)."""
        terms = []
        v = self.v
        for ((nums, dens), _), body in zip(self._coefficients(model, which), self.program.basis_pgf):
            n = nums[v]
            if n:
                terms.append(f"({n}/{dens[v]})" + (f"*({body})" if body else ""))
        return " + ".join(terms) or "0"

    # -- the problem ------------------------------------------------------------------------------------
    @cached_property
    def loss(self) -> str:
        """mse, half-mse or sse."""
        return self.batch.drawn[self.v].get("loss", self.program.problem.loss.value)

    @property
    def loss_words(self) -> str:
        """The loss in words."""
        return _LOSS_WORDS[self.loss]

    @property
    def loss_tex(self) -> str:
        """The loss formula."""
        return _LOSS_TEX[self.loss]

    @cached_property
    def cprime(self) -> str:
        """c' in dL/dw = c' sum_i r_i df/dw(x_i), as LaTeX."""
        return _cprime(self.loss, len(self.batch.data))

    @property
    def cformula(self) -> str:
        """c' as the loss defines it: \\frac{2}{n} (mse), \\frac{1}{n} (half-mse) or 2 (sse)."""
        return {"mse": "\\frac{2}{n}", "half-mse": "\\frac{1}{n}", "sse": "2"}[self.loss]

    @cached_property
    def cfactor(self) -> str:
        """c' as a factor in front of a sum or product: empty when it is 1, else ``2\\,``."""
        return "" if self.cprime == "1" else self.cprime + "\\, "

    @property
    def lr(self) -> str:
        """The learning rate."""
        return tex_rational(*self.fraction("lr"))

    @property
    def steps(self) -> int:
        """T."""
        return self.program.steps

    @property
    def inputs(self) -> tuple[str, ...]:
        """Input names in LaTeX."""
        return self.program.input_tex

    @cached_property
    def points(self) -> list[list[str]]:
        """Data rows (inputs then y) in LaTeX."""
        return [[tex_rational(*self.fraction(f"data.{i}.{j}")) for j in range(len(row))]
                for i, row in enumerate(self.batch.data, 1)]

    @cached_property
    def queries(self) -> list[list[str]]:
        """Query points in LaTeX."""
        return [[tex_rational(*self.fraction(f"query.{i}.{j}")) for j in range(len(row))]
                for i, row in enumerate(self.batch.queries, 1)]

    def D_point(self, i: int) -> str:
        """Data point i (0-based) as decimal ``x,y`` coordinates for a figure."""
        last = len(self.batch.data[i]) - 1
        return f"{_decimal(*self.fraction(f'data.{i + 1}.0'))},{_decimal(*self.fraction(f'data.{i + 1}.{last}'))}"

    @property
    def n_points(self) -> int:
        """n, the number of data points."""
        return len(self.batch.data)

    @property
    def single_point(self) -> bool:
        """Whether there is one data point (sheets then name it inline instead of in a table)."""
        return len(self.batch.data) == 1

    @cached_property
    def point_tuple(self) -> str:
        """The first data point as ``(x, y) = (7, 10)`` in LaTeX."""
        names = ", ".join([*self.inputs, "y"])
        return f"({names}) = ({', '.join(self.points[0])})"

    @cached_property
    def data_coordinates(self) -> str:
        """All data points as pgfplots coordinates ``(x,y) (x,y)``."""
        return " ".join(f"({self.D_point(i)})" for i in range(len(self.batch.data)))

    @cached_property
    def data_rows(self) -> str:
        """The body of a data table: one row per point, cells in inline maths."""
        return " \\\\\n".join(" & ".join(f"\\({value}\\)" for value in row) for row in self.points) + " \\\\"

    @cached_property
    def answers(self) -> list[tuple[str, str]]:
        """(prompt with a capital letter, exact answer in LaTeX) per question."""
        return [(q.ask[:1].upper() + q.ask[1:], self.N(q.answer)) for q in self.meta.questions]

    @property
    def single_input(self) -> bool:
        """Whether the model has one input (then the key draws the functions)."""
        return len(self.program.input_tex) == 1

    @cached_property
    def model_lines(self) -> str:
        """Each model with its starting values, as lines of a gather*."""
        return " \\\\\n".join(f"{m.definition} \\quad\\text{{starting from }} {m.initial}" for m in self.models)

    @property
    def discrepancy(self) -> str:
        """The largest float64 discrepancy of this variant, for the key's closing line."""
        return f"{self.meta.max_rel_error:.1e}"

    @cached_property
    def domain(self) -> tuple[str, str]:
        """A plotting range around the data and query points (single-input families)."""
        xs = [self.fraction(f"data.{i}.0") for i in range(1, len(self.batch.data) + 1)]
        xs += [self.fraction(f"query.{i}.0") for i in range(1, len(self.batch.queries) + 1)]
        values = [n / d for n, d in xs] or [0.0]
        return f"{min(values) - 1:.6g}", f"{max(values) + 1:.6g}"

    @cached_property
    def models(self) -> list["ModelView"]:
        """One view per model."""
        return [ModelView(self, shape, i) for i, shape in enumerate(self.program.models)]

    def model(self, name: str) -> "ModelView":
        """The view of the model called ``name``."""
        return next(m for m in self.models if m.name == name)


class ModelView:
    """The worked solution of one model in one variant, line by line in LaTeX."""

    COLORS = ("blue", "red", "teal", "orange", "violet")

    def __init__(self, variant: VariantView, shape: ModelShape, index: int = 0):
        self.variant = variant
        self.color = self.COLORS[index % len(self.COLORS)]
        self.shape = shape
        self.name = shape.name
        self.tex = _name_tex(shape.name)
        self.params = [_name_tex(w) for w in shape.params]
        self._v = variant.v
        self._prefix = shape.name + "."
        self.fn = Table(self.function)
        self.rhs = Table(lambda which: variant.F(self.name, which))
        self.plot = Table(lambda which: variant.plot(self.name, which))

    def _f(self, key: str) -> tuple[int, int]:
        nums, dens = self._col(key)
        return nums[self._v], dens[self._v]

    def _plan(self, *what, build):
        """This model's :func:`_plan` called ``what``."""
        return _plan(self.variant.plans, ("model", self.name, *what), build)

    def _col(self, key: str) -> tuple[list[int], list[int]]:
        return self.variant.column(self._prefix + key)

    @cached_property
    def args(self) -> str:
        """The input names, comma separated."""
        return ", ".join(self.variant.inputs)

    @cached_property
    def definition(self) -> str:
        """f(x) = <expression> with the drawn constants in place, grouped by input term: (3 u - v) x + 2 u."""
        prog = self.variant.program
        plan = self._plan("definition", build=lambda: [
            (mono, [(self._col(f"feature.{w}.{k}"), wt) for w, wt in zip(self.shape.params, self.params)],
             self._col(f"offset.{k}")) for k, mono in zip(prog.basis_ids, prog.basis_tex)])
        v = self._v
        groups = []
        for mono, features, (offset_nums, offset_dens) in plan:
            terms = [(nums[v], dens[v], wt) for (nums, dens), wt in features if nums[v]]
            if offset_nums[v]:
                terms.append((offset_nums[v], offset_dens[v], ""))
            if not terms:
                continue
            if len(terms) == 1:
                n, d, wt = terms[0]
                groups.append((n, d, f"{wt} {mono}".strip()))
            elif mono:
                groups.append((1, 1, f"\\left({tex_combination(terms)}\\right) {mono}"))
            else:
                groups.extend(terms)
        return f"{self.tex}({self.args}) = {tex_combination(groups)}"

    def value(self, w: str, t: int) -> str:
        """Parameter ``w`` after ``t`` steps."""
        return tex_rational(*self._f(f"{w}.{t}"))

    def _assignments(self, before: str, after: str) -> str:
        """``w1 = ..., w2 = ...`` with the values of the answers ``{before}{w}{after}`` for each parameter."""
        plan = self._plan("assignments", before, after, build=lambda: [
            (wt + " = ", self._col(f"{before}{w}{after}")) for w, wt in zip(self.shape.params, self.params)])
        v = self._v
        return ", ".join([lhs + tex_rational(nums[v], dens[v]) for lhs, (nums, dens) in plan])

    @cached_property
    def initial(self) -> str:
        """w1 = ..., w2 = ... at the start."""
        return self._assignments("", ".0")

    def param_values(self, kind: str) -> str:
        """``w1 = ..., w2 = ...`` for the parameters under ``{model}.{kind}.{w}`` (limit, newton)."""
        return self._assignments(f"{kind}.", "")

    @cached_property
    def final(self) -> str:
        """The parameters after the last step."""
        return self._assignments("", f".{self.variant.steps}")

    @cached_property
    def residuals(self) -> list[str]:
        """r_i = f(x_i) - y_i = ... at the start."""
        out = []
        variant = self.variant
        v = self._v
        plan = self._plan("residuals", build=lambda: [
            (self._col(f"r.0.{i}"), variant.column(f"data.{i}.{len(row) - 1}"))
            for i, row in enumerate(variant.batch.data, 1)])
        for i, (row, ((r_nums, r_dens), (y_nums, y_dens))) in enumerate(zip(variant.points, plan), 1):
            rn, rd, yn, yd = r_nums[v], r_dens[v], y_nums[v], y_dens[v]
            fn, fd = rn * yd + yn * rd, rd * yd
            g = gcd(fn, fd) or 1
            y_tex = tex_operand(yn, yd)
            out.append(f"r_{{{i}}} = {self.tex}({', '.join(row[:-1])}) - {y_tex} = {tex_rational(fn // g, fd // g)} - "
                       f"{y_tex} = {tex_rational(rn, rd)}")
        return out

    @cached_property
    def partials(self) -> list[str]:
        """df/dw_j as functions of the inputs (the chain-rule factors)."""
        prog = self.variant.program
        plan = self._plan("partials", build=lambda: [
            (f"\\frac{{\\partial {self.tex}}}{{\\partial {wt}}} = ",
             [(self._col(f"feature.{w}.{k}"), mono) for k, mono in zip(prog.basis_ids, prog.basis_tex)])
            for w, wt in zip(self.shape.params, self.params)])
        v = self._v
        return [head + tex_combination([(nums[v], dens[v], mono) for (nums, dens), mono in features])
                for head, features in plan]

    @cached_property
    def gradient(self) -> list[str]:
        """dL/dw_j = c' sum_i r_i df/dw_j(x_i) = ... with the numbers written out (up to 4 points)."""
        n = len(self.variant.batch.data)
        written = n <= 4
        plan = self._plan("gradient", build=lambda: (
            [self._col(f"r.0.{i}") for i in range(1, n + 1)] if written else [],
            [(f"\\frac{{\\partial L}}{{\\partial {wt}}} = ", self._col(f"grad.{w}"),
              [self._col(f"J.{i}.{w}") for i in range(1, n + 1)] if written else [])
             for w, wt in zip(self.shape.params, self.params)]))
        v = self._v
        cprime = self.variant.cprime
        residual_columns, rows = plan
        residuals = [tex_operand(nums[v], dens[v]) for nums, dens in residual_columns]
        factor = "" if cprime == "1" else f"{cprime} \\cdot "
        out = []
        for head, (g_nums, g_dens), jacobian in rows:
            value = tex_rational(g_nums[v], g_dens[v])
            if residuals:
                terms = [f"{r} \\cdot {tex_operand(nums[v], dens[v])}" for r, (nums, dens) in zip(residuals, jacobian)]
                inner = terms[0] if n == 1 else "\\left(" + " + ".join(terms) + "\\right)"
                out.append(f"{head}{factor}{inner} = {value}")
            else:
                out.append(head + value)
        return out

    @cached_property
    def updates(self) -> list[str]:
        """w_j <- w_j - lr dL/dw_j = ... for the first step."""
        lr = self.variant.lr
        plan = self._plan("updates", build=lambda: [
            (f"{wt} \\leftarrow ", self._col(f"{w}.0"), self._col(f"grad.{w}"), self._col(f"{w}.1"))
            for w, wt in zip(self.shape.params, self.params)])
        v = self._v
        return [f"{head}{tex_rational(n0[v], d0[v])} - {lr} \\cdot {tex_operand(ng[v], dg[v])} = "
                f"{tex_rational(n1[v], d1[v])}" for head, (n0, d0), (ng, dg), (n1, d1) in plan]

    @cached_property
    def work(self) -> str:
        """The whole first step (residuals, chain rule, gradient, update) as lines of an align*, aligned at
        the first ``=`` or ``\\leftarrow`` of each line."""
        return " \\\\\n".join(_aligned(line) for line in self.residuals + self.partials + self.gradient + self.updates)

    def function(self, which: str) -> str:
        """f(x) = ... from basis coefficients (start, end, step, limit_coef, newton_coef)."""
        return f"{self.tex}({self.args}) = {self.variant.F(self.name, which)}"

    def matrix(self, key: str, rows, cols) -> str:
        """A pmatrix of answers ``{name}.{key}.{row}.{col}``."""
        rows, cols = [str(r) for r in rows], [str(c) for c in cols]
        plan = self._plan("matrix", str(key), tuple(rows), tuple(cols),
                          build=lambda: [[self._col(f"{key}.{r}.{c}") for c in cols] for r in rows])
        v = self._v
        body = r" \\ ".join([" & ".join([tex_rational(nums[v], dens[v]) for nums, dens in row]) for row in plan])
        return r"\begin{pmatrix}" + body + r"\end{pmatrix}"

    def vector(self, key: str) -> str:
        """A column of answers ``{name}.{key}.{w}`` over the parameters (grad, newton_move, v, ...)."""
        plan = self._plan("vector", str(key), build=lambda: [self._col(f"{key}.{w}") for w in self.shape.params])
        v = self._v
        body = r" \\ ".join([tex_rational(nums[v], dens[v]) for nums, dens in plan])
        return r"\begin{pmatrix}" + body + r"\end{pmatrix}"

    @cached_property
    def H(self) -> str:
        """The Hessian of the loss in the parameters, c' J^T J."""
        return self.matrix("H", self.shape.params, self.shape.params)

    @cached_property
    def M(self) -> str:
        """M in one step written as the affine map w -> M w + v."""
        return self.matrix("M", self.shape.params, self.shape.params)

    @cached_property
    def A(self) -> str:
        """The reparameterisation matrix."""
        return self.matrix("A", self.variant.program.basis_ids, self.shape.params)

    @cached_property
    def P(self) -> str:
        """P = A A^T."""
        ids = self.variant.program.basis_ids
        return self.matrix("P", ids, ids)

    @cached_property
    def gram(self) -> str:
        """The Gram matrix of the tangent kernel at the data."""
        idx = range(1, len(self.variant.points) + 1)
        return self.matrix("gram", idx, idx)

    @cached_property
    def iterates(self) -> list[tuple[int, list[str]]]:
        """(step, [parameter values in LaTeX]) for every step."""
        return [(t, [tex_rational(*self._f(f"{w}.{t}")) for w in self.shape.params])
                for t in range(self.variant.steps + 1)]

    def coefficient_path(self, k: str) -> str:
        """pgfplots coordinates of the basis coefficient ``k`` (slope, bias) over the steps, from the iterates."""
        prog = self.variant.program
        coords = []
        for t in range(self.variant.steps + 1):
            total = 0.0
            for w in self.shape.params:
                n, d = self._f(f"feature.{w}.{k}")
                if n:
                    wn, wd = self._f(f"{w}.{t}")
                    total += (n / d) * (wn / wd)
            on, od = self._f(f"offset.{k}")
            coords.append(f"({t},{total + on / od:.6g})")
        del prog
        return " ".join(coords)

    def trajectory(self, w: str) -> str:
        """pgfplots coordinates of parameter ``w`` over the steps."""
        return " ".join(f"({t},{_decimal(*self._f(f'{w}.{t}'))})" for t in range(self.variant.steps + 1))

    def residual_path(self, i: int = 1) -> str:
        """pgfplots coordinates of residual i over the steps."""
        return " ".join(f"({t},{_decimal(*self._f(f'r.{t}.{i}'))})" for t in range(self.variant.steps + 1))
