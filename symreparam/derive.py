"""Exact derivations for one model: GD iterates, tangent kernel, stability, limit and Newton step.

Pure functions of a :class:`~symreparam.problem.Problem`; nothing here prints, reads files or uses
floats. Models affine in their parameters take a fast exact path on DomainMatrix (the loss is then a
quadratic in w and everything has a closed form); other models are iterated by exact substitution.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symreparam import linalg
from symreparam.errors import NotRealError, ParseError, ProblemError
from symreparam.parse import rational_bits, substitute
from symreparam.problem import Model, Problem
from symreparam.reparam import LinearForm, decompose, linear_form

# Exact iterates of non-linear models nest (exp of exp of ...) and roughly triple in size per step;
# past this many operations they are no longer an answer anyone can read, and the next step would
# take minutes.
MAX_ITERATE_OPS = 600
# Exact numbers beyond about 4000 digits are neither readable nor printable (Python refuses to print
# integers of more than 4300 digits), and polynomials in a symbolic learning rate beyond this many
# bits of coefficients in all take seconds per step.
MAX_NUMBER_BITS = 13_000
MAX_ITERATE_BITS = 200_000


def _too_large(values) -> str | None:
    """Why an iterate is too large to be a useful exact answer, or None."""
    total = 0
    for value in values:
        if value.is_Rational:
            size = rational_bits(value)
            if size > MAX_NUMBER_BITS:
                return f"hold numbers of {int(size * 0.30103)} digits"
            total += size
            continue
        numbers = value.atoms(sp.Rational)
        largest = max((rational_bits(a) for a in numbers), default=0)
        if largest > MAX_NUMBER_BITS:
            return f"hold numbers of {int(largest * 0.30103)} digits"
        total += sum(rational_bits(a) for a in numbers)
    if total > MAX_ITERATE_BITS:
        return f"hold {int(total * 0.30103)} digits in all"
    return None


def _undefined(value: sp.Expr) -> bool:
    """Whether an exact value is not a finite real number (zoo from 1/0 or log(0), nan, I from sqrt(-1))."""
    return bool(value.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I)) or value.is_real is False


def _where(data, i: int) -> str:
    return ", ".join(f"{s.name} = {sp.sstr(v)}" for s, v in zip(data.input_symbols, data.inputs[i])) or "the data"


@dataclass(frozen=True)
class Note:
    """Why a quantity is missing or what it means; ``kind`` selects the wording in ``render``."""

    kind: str  # "nonlinear" | "newton-singular" | "stability-no-closed-form"
    values: tuple[tuple[str, sp.Expr | int | str], ...] = ()

    def get(self, key: str):
        """One named value of the note."""
        return dict(self.values)[key]


@dataclass(frozen=True)
class Stability:
    """Where GD on a quadratic loss converges from every start (iff 0 < lr < max_lr = 2 / lambda_max(H_w)),
    and what it does from this start.

    GD moves w - w_limit by (I - lr H)^t, so a run feels only the eigen-directions of H that its start's
    error w0 - w_limit has a component in. ``lambda_run`` is the largest eigenvalue among those (0 when
    the start is already a minimum); ``behaviour`` and ``max_lr_run`` = 2 / lambda_run follow from it.
    """

    lambda_max: sp.Expr
    max_lr: sp.Expr
    behaviour: str | None  # of this run at the problem's learning rate; None when the rate is symbolic
    lambda_run: sp.Expr | None = None  # None where the excited directions cannot be found exactly

    @property
    def max_lr_run(self) -> sp.Expr:
        """The rates below which this run converges: 2 / lambda_run (oo when the start stays put)."""
        run = self.lambda_max if self.lambda_run is None else self.lambda_run
        return sp.oo if run == 0 else sp.radsimp(2 / run)

    @property
    def top_excited(self) -> bool:
        """Whether this start excites the top eigen-direction (so ``max_lr`` is this run's limit too)."""
        return self.lambda_run is None or self.lambda_max == 0 or _compare(self.lambda_run, self.lambda_max) == 0


@dataclass(frozen=True)
class ModelDerivation:
    """Everything derived exactly for one model (basis-free; see ``reparam`` for theta = A w + b)."""

    model: Model
    trajectory: tuple[tuple[sp.Expr, ...], ...]  # parameters at steps 0..T
    partials: tuple[sp.Expr, ...]  # df/dw_j as expressions in inputs and parameters
    residuals: tuple[sp.Expr, ...]  # f(x_i; w0) - y_i
    jacobian: sp.ImmutableMatrix  # df/dw_j at (x_i, w0), n x p
    gradient: tuple[sp.Expr, ...]  # dL/dw_j at w0
    function_initial: sp.Expr  # f(x; w0)
    function_final: sp.Expr  # f(x; w_T)
    gram: sp.ImmutableMatrix  # tangent kernel at the data, n x n, at w0
    kernel: tuple[sp.Expr, ...]  # K(x, x_i) at w0, as functions of the inputs
    function_step: sp.Expr  # f0(x) - lr * c' * sum_i K(x, x_i) r_i
    form: LinearForm | None
    stability: Stability | None
    limit: tuple[sp.Expr, ...] | None
    function_limit: sp.Expr | None
    newton: tuple[sp.Expr, ...] | None
    function_newton: sp.Expr | None
    notes: tuple[Note, ...]

    @property
    def initial(self) -> tuple[sp.Expr, ...]:
        """Parameters at step 0."""
        return self.trajectory[0]

    @property
    def final(self) -> tuple[sp.Expr, ...]:
        """Parameters after the last step."""
        return self.trajectory[-1]

    def function_at(self, values) -> sp.Expr:
        """The model as a function of the inputs at parameters ``values`` (e.g. one iterate)."""
        if self.form is not None:
            return self.form.function(values)
        return function_at(self.model, values)

    @property
    def is_linear(self) -> bool:
        """Whether the model is affine in its parameters."""
        return self.form is not None


def loss_factor(problem: Problem) -> sp.Expr:
    """c' with grad L = c' * sum_i r_i grad f(x_i): 2/n for mse, 1/n for half-mse, 2 for sse."""
    scale = problem.loss_scale if problem.loss_scale is not None else problem.loss.scale(problem.data.size)
    return 2 * scale


def function_at(model: Model, values, step: int = 0) -> sp.Expr:
    """The model as a function of the inputs with parameters fixed at ``values`` (after ``step`` steps)."""
    return sp.expand(model_at(model, model.expression, dict(zip(model.params, values)), step, "any input"))


def model_at(model: Model, expr: sp.Expr, values, step: int, where: str, param: sp.Symbol | None = None) -> sp.Expr:
    """``expr`` (the model, or its derivative in ``param``) with ``values`` put in, through the parser's
    checks: values that would make SymPy compute for hours (2**w at w = 10**9) or that leave the real
    numbers are refused, blaming the starting values at step 0 and the learning rate or the number of
    steps after a step."""
    try:
        return substitute(expr, values, "--init")
    except ParseError as exc:
        when = _when(step)
        if isinstance(exc, NotRealError):
            what = "is not a finite real number" if param is None else f"has no finite real derivative in {param.name}"
            field = _blame(step)
        else:
            what = "is too large to handle exactly" if param is None else f"has a derivative in {param.name} too large " \
                "to handle exactly"
            field = "--init" if step == 0 else "--lr" if step == 1 else "--steps"
        raise ProblemError(field, f"{model.name} {what} at {where} {when} ({exc.message}); {_fewer(step)}") from None


def _fewer(step: int) -> str:
    """What to change when the iterate after ``step`` steps is unusable (every earlier one was fine)."""
    if step == 0:
        return "change the starting values"
    if step == 1:
        return "use a smaller learning rate"
    return f"use a smaller learning rate, or {_at_most(step)}"


def _when(step: int) -> str:
    return "at the start" if step == 0 else f"after step {step}"


def _blame(step: int) -> str:
    """The field at fault when the model is unusable after ``step`` steps: the start, else the rate."""
    return "--init" if step == 0 else "--lr"


def _at_most(step: int) -> str:
    """The advice when the iterate after ``step`` (> 1) steps is the first unusable one."""
    return f"use at most {step - 1} step{'s' if step > 2 else ''}"


def derive_model(problem: Problem, model: Model) -> ModelDerivation:
    """All exact quantities for one model of ``problem``."""
    data = problem.data
    w0 = problem.initial_of(model)
    at_w0 = dict(zip(model.params, w0))
    points = [data.substitution(i) for i in range(data.size)]
    form = linear_form(model.expression, model.params, data.input_symbols)
    # For an affine model the partial derivatives are its features, already at hand.
    partials = form.features if form is not None else tuple(sp.diff(model.expression, p) for p in model.params)
    if form is not None:
        # Affine in w: J_ij = sum_t term_t(x_i) c_tj, so only the few input terms are substituted.
        term_values = [[t.xreplace(pt) for t, _, _ in form.terms] for pt in points]
        jac_rows = [[sp.Add(*(v * cs[j] for v, (_, _, cs) in zip(row, form.terms)))
                     for j in range(len(model.params))] for row in term_values]
        residuals = tuple(
            sp.Add(*(v * c0 for v, (_, c0, _) in zip(row, form.terms)), *(w * g for w, g in zip(w0, jrow)), -y)
            for row, jrow, y in zip(term_values, jac_rows, data.targets)
        )
    else:
        residuals = tuple(sp.expand(model_at(model, model.expression, {**pt, **at_w0}, 0, _where(data, i)) - y)
                          for i, (pt, y) in enumerate(zip(points, data.targets)))
        jac_rows = [[sp.expand(model_at(model, d, {**pt, **at_w0}, 0, _where(data, i), w))
                     for d, w in zip(partials, model.params)] for i, pt in enumerate(points)]
    _check_defined(model, data, residuals, jac_rows, w0)
    jacobian = sp.ImmutableMatrix(jac_rows)
    cprime = loss_factor(problem)
    j, r0 = linalg.unify(linalg.to_domain(jac_rows), linalg.to_domain(linalg.column(residuals)))
    jt = j.transpose()
    gradient = tuple(sp.expand(cprime * g) for g in linalg.entries(jt * r0))
    gram = linalg.to_matrix(j * jt)
    # K(x, x_i) = sum_j df/dw_j(x) df/dw_j(x_i): split df/dw_j(x) into input terms once, then every
    # kernel and the function-space step are small matrix products over those terms.
    grad_terms = [decompose(sp.expand(d.xreplace(at_w0)), data.input_symbols) for d in partials]
    terms = list(dict.fromkeys(t for part in grad_terms for t in part))
    zero = sp.Integer(0)
    coeff = linalg.to_domain([[part.get(t, zero) for part in grad_terms] for t in terms]) if terms else None
    if coeff is not None:
        coeff, jt_u, r_u = linalg.unify(coeff, jt, r0)
        kernel_coeffs = coeff * jt_u  # terms x points
        rows = [[kernel_coeffs.domain.to_sympy(e) for e in row] for row in kernel_coeffs.to_list()]
        kernel = tuple(sp.Add(*(rows[k][i] * t for k, t in enumerate(terms))) for i in range(data.size))
        moved = linalg.entries(kernel_coeffs * r_u)
        delta = sp.Add(*(c * t for c, t in zip(moved, terms)))
    else:
        kernel = tuple(zero for _ in range(data.size))
        delta = zero

    def at(values, step: int = 0) -> sp.Expr:  # the model's function at parameters after ``step`` steps
        return form.function(values) if form is not None else function_at(model, values, step)

    f0 = at(w0)
    function_step = sp.expand(f0 - problem.lr * cprime * delta)

    notes: list[Note] = []
    if form is not None:
        trajectory = _linear_trajectory(problem, model, jac_rows, residuals, w0)
        stability = _stability(problem, jacobian, residuals)
        if stability is None and not jacobian.free_symbols:
            notes.append(Note("stability-no-closed-form", (("model", model.name),)))
        limit = _limit(jacobian, residuals, w0)
        newton, newton_note = _newton(jacobian, residuals, w0, len(model.params), data.size)
        if newton_note:
            notes.append(newton_note)
    else:
        trajectory = _nonlinear_trajectory(problem, model, partials, w0)
        stability = limit = newton = None
        notes.append(Note("nonlinear", (("model", model.name),)))
    return ModelDerivation(
        model=model,
        trajectory=trajectory,
        partials=partials,
        residuals=residuals,
        jacobian=jacobian,
        gradient=gradient,
        function_initial=at(trajectory[0]),
        function_final=at(trajectory[-1], problem.steps),
        gram=gram,
        kernel=kernel,
        function_step=function_step,
        form=form,
        stability=stability,
        limit=limit,
        function_limit=at(limit) if limit is not None else None,
        newton=newton,
        function_newton=at(newton) if newton is not None else None,
        notes=tuple(notes),
    )


def _check_defined(model: Model, data, residuals, jac_rows, values, step: int = 0) -> None:
    """Refuse a model that is undefined, or has no derivative, at the data for the current parameters.

    At the start the starting values are at fault (``--init``); after a step, the step left the
    model's domain (``--lr``). Exact values make the diagnosis sure: log(0) is zoo, sqrt(-1) has I.
    """
    field = _blame(step)
    when = _when(step)
    fix = _fewer(step)
    for i, r in enumerate(residuals):
        if _undefined(r):
            raise ProblemError(field, f"{model.name} is not a finite real number at {_where(data, i)} {when} "
                               f"(a division by zero, or log or sqrt of a non-positive number); {fix}")
    for i, row in enumerate(jac_rows):
        for w, g in zip(model.params, row):
            if _undefined(g):
                raise ProblemError(field, f"{model.name} has no finite real derivative in {w.name} at "
                                   f"{_where(data, i)} {when} (e.g. sqrt at 0); {fix}")
    _check_kinks(model, data, values, step)


def _check_kinks(model: Model, data, values, step: int) -> None:
    """abs(...) of the parameters has no derivative where its argument is zero; GD would silently use 0."""
    kinks = [a for a in model.expression.atoms(sp.Abs) if a.args[0].free_symbols & set(model.params)]
    if not kinks:
        return
    at = dict(zip(model.params, values))
    for i in range(data.size):
        point = {**data.substitution(i), **at}
        for kink in kinks:
            if sp.expand(kink.args[0].xreplace(point)) == 0:
                when = _when(step)
                raise ProblemError(_blame(step),
                                   f"{model.name} uses {sp.sstr(kink)}, which has no derivative where its argument "
                                   f"is 0, as it is at {_where(data, i)} {when}; "
                                   + ("start elsewhere" if step == 0 else "use another learning rate"))


def _linear_trajectory(problem: Problem, model: Model, jac_rows, residuals, w0) -> tuple[tuple[sp.Expr, ...], ...]:
    """Iterate w <- w - lr * c' * J^T (J (w - w0) + r0) exactly (the residual of an affine model)."""
    return affine_trajectory(jac_rows, residuals, w0, problem.lr * loss_factor(problem), problem.steps, model.name)


def affine_trajectory(jac_rows, residuals, w0, rate: sp.Expr, steps: int, name: str) -> tuple[tuple[sp.Expr, ...], ...]:
    """Exact gradient-descent iterates of a model affine in its parameters, as an affine map on DomainMatrix.

    The residual at w is J (w - w0) + r0, and one step is w <- w - rate * J^T r(w). (A student's
    mistaken path of a linear model is walked by :mod:`symreparam.malrules` in the field of the drawn
    symbols instead, where many short paths are cheaper than DomainMatrix conversions.)
    Raises :class:`ProblemError` when the iterates grow too large to be a useful exact answer.
    """
    j = linalg.to_domain(jac_rows, rate, *w0, *residuals)
    domain = j.domain
    p = j.shape[1]
    gt = j.transpose()
    step_rate = domain.from_sympy(rate)
    w0_vec = linalg.to_domain(linalg.column(w0)).convert_to(domain)
    r0 = linalg.to_domain(linalg.column(residuals)).convert_to(domain)
    m = linalg.identity(p, domain) - (gt * j) * step_rate
    v = w0_vec - m * w0_vec - (gt * r0) * step_rate
    out = [tuple(w0)]
    w = w0_vec
    for step in range(1, steps + 1):
        w = m * w + v
        values = tuple(linalg.entries(w))
        _check_size(values, name, step)
        out.append(values)
    return tuple(out)


def _check_size(values, name: str, step: int) -> None:
    why = _too_large(values)
    if why is None:
        return
    fix = _at_most(step) if step > 1 else "use a simpler learning rate"
    raise ProblemError("--steps", f"the exact parameters of {name} after step {step} {why}, too large to be a "
                       f"useful exact answer; {fix}")


def _nonlinear_trajectory(problem: Problem, model: Model, partials, w0) -> tuple[tuple[sp.Expr, ...], ...]:
    """The correct path of a model that is not affine in its parameters (see :func:`nonlinear_trajectory`)."""
    return nonlinear_trajectory(problem, model, partials, w0, problem.lr * loss_factor(problem))


def nonlinear_trajectory(problem: Problem, model: Model, partials, w0, rate: sp.Expr, *,
                         student_partials=None, mask=None) -> tuple[tuple[sp.Expr, ...], ...]:
    """Iterate w <- w - rate * D * sum_i r_i(w) G(x_i; w) by exact substitution, checking at every step that
    the model is still defined and differentiable there and that the iterates stay readable.

    G is the model's gradient (``student_partials`` None) and D = I (``mask`` None) on the worked
    solution's path; a student's mistaken path changes them, as in :func:`affine_trajectory`.
    """
    data = problem.data
    points = [data.substitution(i) for i in range(data.size)]
    values_at = [model.expression.xreplace(pt) for pt in points]
    partials_at = [[d.xreplace(pt) for d in partials] for pt in points]
    used = partials if student_partials is None else student_partials
    if mask is not None:
        used = [d if keep else sp.Integer(0) for d, keep in zip(used, mask)]
    used_at = partials_at if used is partials else [[d.xreplace(pt) for d in used] for pt in points]
    out = [tuple(w0)]
    w = tuple(w0)

    def at_point(expr, at, i, step, param=None):
        return sp.expand(model_at(model, expr, at, step, _where(data, i), param))

    for step in range(1, problem.steps + 1):
        at = dict(zip(model.params, w))
        residuals = [at_point(f, at, i, step - 1) - y for i, (f, y) in enumerate(zip(values_at, data.targets))]
        jac = [[at_point(d, at, i, step - 1, p) for d, p in zip(row, model.params)] for i, row in enumerate(partials_at)]
        if step > 1:
            _check_defined(model, data, residuals, jac, w, step - 1)
        direction = jac if used_at is partials_at else \
            [[at_point(d, at, i, step - 1, p) for d, p in zip(row, model.params)] for i, row in enumerate(used_at)]
        grad = [sp.Add(*(r * row[j] for r, row in zip(residuals, direction))) for j in range(len(w))]
        w = tuple(sp.expand(wj - rate * gj) for wj, gj in zip(w, grad))
        ops = sum(sp.count_ops(e) for e in w)
        if ops > MAX_ITERATE_OPS:
            if step > 1:
                field, fix = "--steps", _at_most(step)
            elif rate.free_symbols:
                field, fix = "--lr", "use a numeric learning rate"
            else:
                field, fix = "--data", "use fewer data points or a simpler model"
            raise ProblemError(
                field,
                f"the exact iterates of {model.name} grow too large to be useful after step {step} "
                f"({ops} operations, limit {MAX_ITERATE_OPS}; it is not linear in its parameters); {fix}",
            )
        _check_size(w, model.name, step)
        out.append(w)
    # the last iterate too must leave the model defined at the data
    at = dict(zip(model.params, w))
    final = [at_point(f, at, i, problem.steps) - y for i, (f, y) in enumerate(zip(values_at, data.targets))]
    for i, r in enumerate(final):
        if _undefined(r):
            raise ProblemError("--lr", f"{model.name} is not a finite real number at {_where(data, i)} after step "
                               f"{problem.steps}; {_fewer(problem.steps)}")
    return tuple(out)


def _stability(problem: Problem, jacobian: sp.ImmutableMatrix, residuals) -> Stability | None:
    """2 / lambda_max(H_w) with H_w = c' J^T J, via the smaller of J^T J and J J^T, and this run's behaviour.

    The behaviour describes this run: the start's error w0 - w_limit = J^+ r0 has components only along
    the eigen-directions that J^T r0 (in w) or r0 (in function space) has, so the largest eigenvalue
    this run feels is the largest root of the minimal polynomial of that vector, found exactly from a
    Krylov basis. A start that already fits the data, or sits at the least-squares optimum, excites
    nothing and stays put at any rate.
    """
    return stability_of(jacobian, residuals, loss_factor(problem), problem.lr)


def stability_of(jacobian: sp.ImmutableMatrix, residuals, cprime: sp.Expr, lr: sp.Expr) -> Stability | None:
    """:class:`Stability` of a linear model from its Jacobian J and residuals r0 at the data, the loss's
    c' (H_w = c' J^T J) and the learning rate (see :func:`_stability`)."""
    j = jacobian
    in_w = j.cols <= j.rows
    small = j.T * j if in_w else j * j.T
    if small.shape != (1, 1) and small.free_symbols:
        return None  # eigenvalues of a symbolic matrix are not rational: an exercise family decides per variant
    small_dm = linalg.to_domain(small.tolist())
    largest = linalg.largest_eigenvalue(small_dm)
    if largest is None:
        return None
    lam = sp.expand(cprime * largest)
    if lam == 0:  # a flat loss: nothing moves, at any rate
        return Stability(lam, sp.oo, "stays put", sp.Integer(0))
    max_lr = sp.radsimp(2 / lam)
    run = _excited(small_dm, j.T * sp.ImmutableMatrix(residuals) if in_w else sp.ImmutableMatrix(residuals))
    lam_run = None if run is None else sp.expand(cprime * run)
    if lam_run == 0:
        return Stability(lam, max_lr, "stays put", lam_run)
    if lam_run is not None and _compare(lam_run, lam) == 0:
        lam_run = lam  # the same number, written once (a root may come back as radicals or as CRootOf)
    limit = max_lr if lam_run is None else sp.radsimp(2 / lam_run)
    return Stability(lam, max_lr, behaviour_at(lr, limit), lam_run)


def _excited(small, vector: sp.MatrixBase) -> sp.Expr | None:
    """The largest eigenvalue of ``small`` that ``vector`` has a component along (None if not exact)."""
    if vector.free_symbols and not all(sp.expand(v) == 0 for v in vector):
        return None
    try:
        return linalg.largest_eigenvalue(small, linalg.to_domain(vector.tolist()))
    except (NotImplementedError, sp.PolynomialError, ZeroDivisionError):
        return None  # transcendental entries whose zero test SymPy cannot settle: every start's label


def behaviour_at(lr: sp.Expr, max_lr: sp.Expr) -> str | None:
    """What GD does at a numeric learning rate, decided exactly (None when either side is symbolic)."""
    if lr.free_symbols or max_lr.free_symbols:
        return None
    relation = _compare(lr, max_lr)
    if relation > 0:
        return "diverges"
    if relation == 0:
        return "oscillates without converging"
    if _compare(lr, max_lr / 2) > 0:
        return "converges, oscillating"
    return "converges"


def _compare(a: sp.Expr, b: sp.Expr) -> int:
    """Sign of a - b for real constants: exact for rationals, else by evaluation at growing precision.

    Only an exact zero (proved by ``equals``) counts as equal, so a tiny difference is never rounded away.
    """
    diff = a - b
    if diff.is_Rational:
        return int(diff.p > 0) - int(diff.p < 0)
    for digits in (30, 100, 400):
        value = diff.evalf(digits)
        if value != 0 and abs(value) > sp.Float(10, digits) ** (-digits + 10):
            return 1 if value > 0 else -1
    if diff.equals(0):
        return 0
    raise ProblemError("--lr", "the learning rate is too close to the stability limit to classify exactly")


def _limit(jacobian: sp.ImmutableMatrix, residuals, w0) -> tuple[sp.Expr, ...]:
    """w_inf = w0 - J^+ r0: the least-squares fit nearest to w0 (where GD converges for stable lr)."""
    j = linalg.to_domain(jacobian.tolist())
    r0 = linalg.to_domain(linalg.column(residuals))
    step = linalg.pinv_apply(j, r0)
    return tuple(sp.expand(w - s) for w, s in zip(w0, linalg.entries(step)))


def _newton(jacobian: sp.ImmutableMatrix, residuals, w0, p: int, n: int):
    """The full Newton step w0 - H^-1 grad L = w0 - (J^T J)^-1 J^T r0, or a note saying why not."""
    j = linalg.to_domain(jacobian.tolist())
    gram = j.transpose() * j
    r = linalg.rank(gram)
    if r < p:
        return None, Note("newton-singular", (("rank", r), ("params", p), ("points", n)))
    r0 = linalg.to_domain(linalg.column(residuals))
    step = linalg.solve(gram, j.transpose() * r0)
    return tuple(sp.expand(w - s) for w, s in zip(w0, linalg.entries(step))), None
