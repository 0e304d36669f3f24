"""A family's answers derived once, with the drawn quantities as symbols, then evaluated per variant.

``derive_program`` runs the exact engine a single time on the family's problem with every numeric draw
left as a symbol, flattens the result into named answers (``f2.w3.1`` is w3 after step 1; the README
lists every key) and compiles each into a :class:`~symreparam.exactvec.RationalFunction`.
``evaluate_program`` then substitutes a whole batch of variants at once, and ``verify_batch``
re-computes every answer of every variant in float64 with :mod:`symreparam.verify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from symreparam import exactvec
from symreparam.answers import answer_expressions, basis_ids, is_mistake_key, mistake_key
from symreparam.malrules import Mistake, mistakes
from symreparam.derive import loss_factor
from symreparam.exactvec import RationalFunction, Values
from symreparam.family import Family, FamilyError
from symreparam.numeric import compile_model
from symreparam.parse import symbol
from symreparam.problem import Origin, Problem, build_problem

from symreparam.solution import Analysis, analyse
from symreparam.malverify import ModelFloats, content_floats, mistake_error
from symreparam.verify import Case, Exact, check, evaluate_sized, quiet, relative_error, residuals_sized


@dataclass(frozen=True)
class ModelShape:
    """What templates and checks need to know about one model of a family, independent of the draw."""

    name: str
    params: tuple[str, ...]
    linear: bool
    expression: sp.Expr


@dataclass(frozen=True)
class Program:
    """One family's derivation for one choice of the categorical draws (loss, steps)."""

    family: Family
    choice: tuple[tuple[str, str], ...]
    problem: Problem
    analysis: Analysis
    constants: tuple[sp.Symbol, ...]
    answers: Mapping[str, sp.Expr]
    compiled: Mapping[str, RationalFunction]
    data: tuple[tuple[RationalFunction, ...], ...]  # per point: each input, then y
    queries: tuple[tuple[RationalFunction, ...], ...]
    lr: RationalFunction
    models: tuple[ModelShape, ...]
    basis_ids: tuple[str, ...]
    basis_tex: tuple[str, ...]  # LaTeX monomials ('' for the constant)
    basis_pgf: tuple[str, ...]  # pgfplots expressions ('' for the constant)
    input_tex: tuple[str, ...]  # the input names in LaTeX
    # Typical mistakes that change an asked answer; their values are compiled under mal.{id}.{key}.
    mistakes: tuple[Mistake, ...] = ()

    @property
    def steps(self) -> int:
        """T, the number of gradient steps."""
        return self.problem.steps


LOSS_SCALE = "loss_scale"  # the symbol standing for c in L = c * sum (f - y)^2 when the loss is drawn


@lru_cache(maxsize=64)
def loss_scale(loss: str, n: int) -> tuple[int, int]:
    """c of a loss name for n points, as (numerator, denominator) (a few names, asked per variant)."""
    from symreparam.problem import Loss

    value = Loss.parse(loss, "loss").scale(n)
    return int(value.p), int(value.q)


def symbolic_problem(family: Family, choice: Mapping[str, str]) -> Problem:
    """The family's problem with numeric draws as symbols and ``steps`` fixed by ``choice``.

    A drawn loss is not a separate derivation: its scale c enters as one more symbol.
    """
    raw = dict(family.problem)
    fields = {
        "models": raw["models"],
        "init": raw["init"],
        "data": raw["data"],
        "lr": str(raw.get("lr", "0.1")),
        "steps": str(raw.get("steps", "1")),
        "loss": str(raw.get("loss", "mse")),
        "queries": raw.get("queries", []),
    }
    drawn_loss = fields["loss"] in {d.name for d in family.draws}
    if drawn_loss:
        fields["loss"] = "mse"  # replaced by the symbolic scale below
    if fields["steps"] in choice:
        fields["steps"] = choice[fields["steps"]]
    if isinstance(fields["models"], str):
        fields["models"] = [fields["models"]]
    if not isinstance(fields["models"], list) or not isinstance(fields["init"], Mapping) or \
            not isinstance(fields["data"], list) or not isinstance(fields["queries"], list):
        raise FamilyError(f"{family.path.name}: problem",
                          "expected models = [...], init = {...}, data = [{...}, ...] and queries = [{...}]")
    try:
        problem = build_problem(
            models=fields["models"],
            init={str(k): str(v) for k, v in fields["init"].items()},
            data=[{str(k): str(v) for k, v in d.items()} for d in fields["data"]],
            lr=fields["lr"],
            steps=fields["steps"],
            loss=fields["loss"],
            origin=Origin(f"{family.path.name}: problem"),
            constants=family.constants,
            queries=[{str(k): str(v) for k, v in q.items()} for q in fields["queries"]],
        )
    except FamilyError:
        raise
    except Exception as exc:  # a ParseError/ProblemError already names the key; keep its text
        if hasattr(exc, "field"):
            raise FamilyError(exc.field, exc.message) from None
        raise
    if drawn_loss:
        scale = symbol(LOSS_SCALE)
        problem = replace(problem, loss_scale=scale, constants=problem.constants + (scale,))
    return problem


def variant_problem(family: Family, drawn: Mapping[str, str]) -> Problem:
    """The ordinary, numeric problem of one variant: the drawn values put in place of their names.

    This is the slow way to a variant's answers (the full engine on numbers); tests use it to check
    the derive-once path, and the checker uses it to name a variant's problem.
    """
    choice = {d.name: drawn[d.name] for d in family.draws if d.categorical}
    symbolic = symbolic_problem(family, choice)
    values = {symbol(d.name): sp.Rational(*drawn_rational(drawn[d.name], d.name))
              for d in family.draws if not d.categorical}
    fields = {
        "models": [sp.sstr(m.expression.xreplace(values)) for m in symbolic.models],
        "init": {w.name: sp.sstr(v.xreplace(values)) for w, v in symbolic.initial},
        "data": [{**{s.name: sp.sstr(v.xreplace(values)) for s, v in zip(symbolic.data.input_symbols, row)},
                  "y": sp.sstr(y.xreplace(values))}
                 for row, y in zip(symbolic.data.inputs, symbolic.data.targets)],
        "lr": sp.sstr(symbolic.lr.xreplace(values)),
        "steps": str(symbolic.steps),
        "loss": drawn.get("loss", symbolic.loss.value),
        "queries": [{s.name: sp.sstr(v.xreplace(values)) for s, v in zip(symbolic.data.input_symbols, q)}
                    for q in symbolic.queries],
    }
    return build_problem(**fields, origin=Origin(f"{family.path.name} variant"))


def derive_program(family: Family, choice: Mapping[str, str]) -> Program:
    """Derive the family once for one choice of its categorical draws and compile every answer."""
    problem = symbolic_problem(family, choice)
    analysis = analyse(problem)
    not_linear = [d.model.name for d in analysis.derivations if not d.is_linear]
    if not_linear:
        raise FamilyError(f"{family.path.name}: problem.models",
                          f"{not_linear[0]} is not linear in its parameters; family models must be (their answers "
                          "are then rational in the drawn numbers)")
    answers = answer_expressions(analysis)
    constants = problem.constants
    compiled = {}
    for key, expr in answers.items():
        try:
            compiled[key] = exactvec.compile_rational(expr, constants)
        except exactvec.NotRational as exc:
            raise FamilyError(f"{family.path.name}: problem",
                              f"the answer {key} is not a rational function of the drawn quantities ({exc}); "
                              "a family must keep every answer rational") from None

    def rf(expr):
        try:
            return exactvec.compile_rational(expr, constants)
        except exactvec.NotRational as exc:
            raise FamilyError(f"{family.path.name}: problem", f"a value is not rational in the draws ({exc})") from None

    asked = list(dict.fromkeys(q.answer for q in family.questions if q.answer in answers))
    found = mistakes(analysis, answers, asked)
    field_symbols = tuple(constants) + tuple(problem.lr_symbols)
    for mistake in found:
        for key, expr in mistake.answers.items():
            if mistake.raw is not None and field_symbols == tuple(constants):
                compiled[mistake_key(mistake.id, key)] = exactvec.compile_field_element(mistake.raw[key], constants)
            else:
                compiled[mistake_key(mistake.id, key)] = rf(expr)

    data = tuple(tuple(rf(v) for v in (*row, y)) for row, y in zip(problem.data.inputs, problem.data.targets))
    queries = tuple(tuple(rf(v) for v in q) for q in problem.queries)
    shapes = tuple(ModelShape(d.model.name, tuple(w.name for w in d.model.params), d.is_linear, d.model.expression)
                   for d in analysis.derivations)
    return Program(
        family=family,
        choice=tuple(sorted(choice.items())),
        problem=problem,
        analysis=analysis,
        constants=constants,
        answers=answers,
        compiled=compiled,
        data=data,
        queries=queries,
        lr=rf(problem.lr),
        models=shapes,
        basis_ids=basis_ids(analysis.basis),
        basis_tex=tuple("" if f == 1 else sp.latex(f, order="lex") for f in analysis.basis.functions),
        basis_pgf=tuple("" if f == 1 else sp.sstr(f).replace("**", "^") for f in analysis.basis.functions),
        input_tex=tuple(sp.latex(s) for s in problem.data.input_symbols),
        mistakes=found,
    )




@dataclass(frozen=True, eq=False)
class Batch:
    """Exact answers of V variants of one program: key -> :class:`Values` (arrays over the variants)."""

    program: Program
    drawn: tuple[Mapping[str, str], ...]
    points: exactvec.Points
    values: Mapping[str, Values]
    data: tuple[tuple[Values, ...], ...]
    queries: tuple[tuple[Values, ...], ...]
    lr: Values

    @property
    def size(self) -> int:
        """V, the number of variants."""
        return self.points.size

    def fraction(self, key: str, v: int) -> tuple[int, int]:
        """Answer ``key`` of variant ``v`` as (numerator, denominator)."""
        nums, dens = self.columns[key]
        return nums[v], dens[v]

    @cached_property
    def losses(self) -> tuple[tuple[str, ...], np.ndarray]:
        """The loss conventions (drawn, or the family's) that occur in the batch, and per variant the
        position of its own among them."""
        fixed = self.program.problem.loss.value
        names = [drawn.get("loss", fixed) for drawn in self.drawn]
        distinct = tuple(sorted(set(names)))
        position = {name: i for i, name in enumerate(distinct)}
        return distinct, np.array([position[name] for name in names], dtype=np.intp)

    def shown(self, mistake, key: str) -> np.ndarray:
        """Per variant: whether a typical mistake applies (under the variant's loss) and gives answer
        ``key`` a defined value, so that documents, records and quizzes show it."""
        cache = self._shown
        if (mistake.id, key) not in cache:
            cache[mistake.id, key] = applicable(self, mistake) & (self.values[mistake_key(mistake.id, key)].den != 0)
        return cache[mistake.id, key]

    @cached_property
    def _shown(self) -> dict[tuple[str, str], np.ndarray]:
        return {}

    @cached_property
    def columns(self) -> dict[str, tuple[list[int], list[int]]]:
        """Every answer and drawn number as Python-int lists, for fast per-variant lookups."""
        out = {key: (v.num.tolist(), v.den.tolist()) for key, v in self.values.items()}
        for name in self.points.nums:
            out.setdefault(name, (self.points.nums[name].tolist(), self.points.dens[name].tolist()))
        out["lr"] = (self.lr.num.tolist(), self.lr.den.tolist())
        for i, row in enumerate(self.data, 1):
            for j, value in enumerate(row):
                out[f"data.{i}.{j}"] = (value.num.tolist(), value.den.tolist())
        for i, row in enumerate(self.queries, 1):
            for j, value in enumerate(row):
                out[f"query.{i}.{j}"] = (value.num.tolist(), value.den.tolist())
        return out


def join_batches(parts: Sequence[tuple[Batch, Sequence[int]]]) -> Batch:
    """One batch of the given variants of batches of one program, in the order given.

    Variants drawn in different rounds are checked in float64 in one vectorised pass: a pass costs
    some milliseconds whatever its size, and every variant's figures are the same in any batch."""
    if not parts:
        raise ValueError("join_batches: no batch to join")
    first, positions = parts[0]
    if len(parts) == 1 and list(positions) == list(range(first.size)):
        return first
    index = [np.asarray(list(p), dtype=np.intp) for _, p in parts]

    def join(values: Sequence[Values]) -> Values:
        return Values(np.concatenate([v.num[i] for v, i in zip(values, index)]),
                      np.concatenate([v.den[i] for v, i in zip(values, index)]))

    batches = [b for b, _ in parts]
    if any(b.program is not first.program for b in batches):
        raise ValueError("join_batches: batches of different programs")
    pts = exactvec.Points(
        {name: np.concatenate([b.points.nums[name][i] for b, i in zip(batches, index)]) for name in first.points.nums},
        {name: np.concatenate([b.points.dens[name][i] for b, i in zip(batches, index)]) for name in first.points.dens},
        sum(len(i) for i in index))
    return Batch(
        program=first.program,
        drawn=tuple(b.drawn[v] for b, i in zip(batches, index) for v in i.tolist()),
        points=pts,
        values={key: join([b.values[key] for b in batches]) for key in first.values},
        data=tuple(tuple(join([b.data[r][c] for b in batches]) for c in range(len(row)))
                   for r, row in enumerate(first.data)),
        queries=tuple(tuple(join([b.queries[r][c] for b in batches]) for c in range(len(row)))
                      for r, row in enumerate(first.queries)),
        lr=join([b.lr for b in batches]),
    )


@lru_cache(maxsize=4096)
def drawn_rational(text: str, name: str) -> tuple[int, int]:
    """A drawn value's exact text as (numerator, denominator); the few distinct texts are parsed once."""
    from symreparam.parse import parse_number

    value = parse_number(text, f"draw {name}")
    return int(value.p), int(value.q)


def evaluate_program(program: Program, drawn: Sequence[Mapping[str, str]]) -> Batch:
    """Substitute every variant's drawn values into every compiled answer at once."""
    names = [s.name for s in program.constants]
    n_points = program.problem.data.size
    pairs = {}
    for name in names:
        col = []
        for values in drawn:
            if name == LOSS_SCALE:
                col.append(loss_scale(values["loss"], n_points))
                continue
            col.append(drawn_rational(values[name], name))
        pairs[name] = col
    pts = exactvec.points(pairs) if names else exactvec.Points({}, {}, len(drawn))
    everything = [*program.compiled.values(), *(rf for row in program.data for rf in row),
                  *(rf for row in program.queries for rf in row), program.lr]
    found = iter(exactvec.evaluate_many(everything, pts))
    values = {key: next(found) for key in program.compiled}
    data = tuple(tuple(next(found) for _ in row) for row in program.data)
    queries = tuple(tuple(next(found) for _ in row) for row in program.queries)
    return Batch(program, tuple(drawn), pts, values, data, queries, next(found))


def applicable(batch: Batch, mistake) -> np.ndarray:
    """Per variant, whether a typical mistake can happen with that variant's loss convention."""
    n = batch.program.problem.data.size
    distinct, which = batch.losses
    return np.array([mistake.applies(loss, n) for loss in distinct], dtype=bool)[which]


def undefined(batch: Batch) -> np.ndarray:
    """Variants where some answer divides by zero (e.g. a ratio of a change that is zero)."""
    bad = np.zeros(batch.size, dtype=bool)
    # a mistaken path may well divide by zero (a ratio of moves when the first model does not move)
    answers = [v for k, v in batch.values.items() if not is_mistake_key(k)]
    for values in [*answers, *(v for row in batch.data for v in row), batch.lr]:
        bad |= values.den == 0
    return bad


@quiet
def verify_batch(batch: Batch) -> np.ndarray:
    """Largest float64 discrepancy of every variant over every answer of every model, shape (V,)."""
    program = batch.program
    problem = program.problem
    vsize = batch.size
    data = problem.data
    n = data.size
    consts = np.column_stack([batch.points.nums[s.name] / batch.points.dens[s.name] for s in program.constants]) \
        if program.constants else np.zeros((vsize, 0))
    x_in = np.stack([np.column_stack([v.floats() for v in row[:-1]]) if row[:-1] else np.zeros((vsize, 0))
                     for row in batch.data], axis=1)  # (V, n, d)
    y = np.column_stack([row[-1].floats() for row in batch.data])
    q_in = [np.column_stack([v.floats() for v in q]) for q in batch.queries]
    probes_in = np.concatenate([x_in, x_in + 0.5] + [q[:, None, :] for q in q_in], axis=1)  # (V, m, d)
    m_probes = probes_in.shape[1]

    def with_consts(points):
        return np.concatenate([points, np.repeat(consts[:, None, :], points.shape[1], axis=1)], axis=2)

    inputs = data.input_symbols
    basis_fns = program.analysis.basis.functions
    basis_vals = np.stack([compile_model(sp.sympify(f, strict=True), inputs, ())(
        probes_in.reshape(vsize * m_probes, probes_in.shape[-1]), np.zeros(0))[0].reshape(vsize, m_probes)
        for f in basis_fns], axis=-1)
    ids = program.basis_ids
    lr = batch.lr.floats()
    if problem.loss_scale is not None:
        cprime = 2 * batch.points.nums[LOSS_SCALE] / batch.points.dens[LOSS_SCALE]
    else:
        cprime = np.full(vsize, float(loss_factor(problem)))
    f = {key: values.floats() for key, values in batch.values.items()}
    worst = np.zeros(vsize)
    n_q = len(program.queries)
    model_floats = []
    for shape, d in zip(program.models, program.analysis.derivations):
        mname = shape.name
        names = shape.params
        T = problem.steps

        def get(fmt, *rows):
            return np.stack([f[fmt.format(*r)] for r in rows], axis=-1)

        coef = lambda which: np.stack([f[f"{mname}.{which}.{k}"] for k in ids], axis=-1)  # noqa: E731
        start, end = coef("start"), coef("end")
        f_start = np.einsum("vmk,vk->vm", basis_vals, start)
        f_end = np.einsum("vmk,vk->vm", basis_vals, end)
        f_step = np.einsum("vmk,vk->vm", basis_vals, coef("step"))
        kernel = np.stack([np.einsum("vmk,vk->vm", basis_vals, coef(f"kernel.{i}")) for i in range(1, n + 1)], axis=-1)
        # query probes are answers in their own right: compare those values, not the expansion
        for q in range(1, n_q + 1):
            col = 2 * n + q - 1
            f_start[:, col] = f[f"{mname}.fq.{q}.start"]
            f_end[:, col] = f[f"{mname}.fq.{q}.end"]
            for i in range(1, n + 1):
                kernel[:, col, i - 1] = f[f"{mname}.kq.{q}.{i}"]
        has = lambda key: key in f  # noqa: E731
        exact = Exact(
            trajectory=np.stack([get(f"{mname}.{{0}}.{t}", *[(w,) for w in names]) for t in range(T + 1)], axis=1),
            shift=np.zeros((vsize, T + 1), dtype=int),
            residuals=get(f"{mname}.r.0.{{0}}", *[(i,) for i in range(1, n + 1)]),
            jacobian=np.stack([get(f"{mname}.J.{i}.{{0}}", *[(w,) for w in names]) for i in range(1, n + 1)], axis=1),
            gradient=get(f"{mname}.grad.{{0}}", *[(w,) for w in names]),
            gram=np.stack([get(f"{mname}.gram.{i}.{{0}}", *[(j,) for j in range(1, n + 1)])
                           for i in range(1, n + 1)], axis=1),
            kernel=kernel,
            f_initial=f_start,
            f_final=f_end,
            f_step=f_step,
            basis=basis_vals,
            coef_initial=start,
            coef_final=end,
            lambda_max=f[f"{mname}.lambda_max"] if has(f"{mname}.lambda_max") else None,
            max_lr=f[f"{mname}.max_lr"] if has(f"{mname}.max_lr") else None,
            limit=get(f"{mname}.limit.{{0}}", *[(w,) for w in names]) if has(f"{mname}.limit.{names[0]}") else None,
            newton=get(f"{mname}.newton.{{0}}", *[(w,) for w in names]) if has(f"{mname}.newton.{names[0]}") else None,
            A=np.stack([get(f"{mname}.A.{k}.{{0}}", *[(w,) for w in names]) for k in ids], axis=1),
            b=coef("b"),
            P=np.stack([get(f"{mname}.P.{k}.{{0}}", *[(l,) for l in ids]) for k in ids], axis=1),
            hessian=np.stack([get(f"{mname}.H.{w}.{{0}}", *[(u,) for u in names]) for w in names], axis=1),
            step_map=np.stack([get(f"{mname}.M.{w}.{{0}}", *[(u,) for u in names]) for w in names], axis=1),
            step_offset=get(f"{mname}.v.{{0}}", *[(w,) for w in names]),
            margin=get(f"{mname}.margin.{{0}}", *[(k,) for k in range(1, len(names) + 1)]),
            newton_move=get(f"{mname}.newton_move.{{0}}", *[(w,) for w in names])
            if has(f"{mname}.newton_move.{names[0]}") else None,
            coef_path=np.stack([coef(f"coef.{t}") for t in range(T + 1)], axis=1),
        )
        case = Case(
            model=compile_model(shape.expression, tuple(inputs) + tuple(program.constants), d.model.params),
            x=with_consts(x_in),
            y=y,
            w0=exact.trajectory[:, 0],
            lr=lr,
            cprime=cprime,
            probes=with_consts(probes_in),
            linear=True,
        )
        errors = check(case, exact)
        # grad_theta L = c' Phi^T r0 with Phi the basis at the data: recomputed from the model's residuals
        r0, s_r0 = residuals_sized(case, evaluate_sized(case, case.x, case.w0))
        gtheta = cprime[:, None] * np.einsum("vnk,vn->vk", basis_vals[:, :n], r0)
        errors["the gradient in theta"] = relative_error(
            coef("gtheta"), gtheta, np.abs(cprime)[:, None] * np.einsum("vnk,vn->vk", np.abs(basis_vals[:, :n]), s_r0))
        for name, err in errors.items():
            worst = np.maximum(worst, err)
        model_floats.append(ModelFloats(
            name=mname, params=tuple(names), case=case, n_inputs=len(inputs),
            queries=with_consts(np.stack(q_in, axis=1)) if q_in else np.zeros((vsize, 0, len(inputs) + len(consts[0]))),
            A=exact.A, b=exact.b,
            contents=content_floats(d, problem, program.constants, consts),
            steps=T, linear=True))
    changes = {shape.name: np.stack([f[f"{shape.name}.change.{k}"] for k in ids], axis=-1) for shape in program.models}
    first = program.models[0].name
    for shape in program.models[1:]:
        for kk, k in enumerate(ids):
            key = f"ratio.{shape.name}.{k}"
            if key in f:
                with np.errstate(all="ignore"):
                    numeric = changes[shape.name][:, kk] / changes[first][:, kk]
                worst = np.maximum(worst, relative_error(f[key][:, None], numeric[:, None]))
    return np.maximum(worst, _verify_mistakes(batch, model_floats, f))


def _verify_mistakes(batch: Batch, model_floats, f) -> np.ndarray:
    """Largest discrepancy of every typical mistake's answers where the mistake applies, per variant."""
    program = batch.program
    worst = np.zeros(batch.size)
    n = program.problem.data.size
    for mistake in program.mistakes:
        able = applicable(batch, mistake)
        if not np.any(able):
            continue
        answers = {key: f[mistake_key(mistake.id, key)] for key in mistake.answers}
        recipe = mistake.rule.recipe
        factor = np.full(batch.size, float(recipe.factor_at(n)) if recipe else 1.0)
        err = mistake_error(mistake.rule, dict(mistake.words), answers, model_floats, f, program.basis_ids, factor)
        # a mistaken path may be undefined where the right one is not (a ratio over a zero move)
        defined = np.all(np.stack([np.isfinite(v) for v in answers.values()]), axis=0)
        worst = np.maximum(worst, np.where(able & defined, err, 0.0))
    return worst
