"""``solve``: the pipeline from a problem to a verified solution, and the solution's data types."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from symreparam.derive import ModelDerivation, derive_model
from symreparam.errors import SymreparamError
from symreparam.problem import Problem, build_problem, load_problem, reference_problem
from symreparam.reparam import Basis, Reparameterisation, coefficients, common_basis, reparameterisation, \
    same_function_class
from symreparam.verify import Verification, verify_model


@dataclass(frozen=True)
class ModelSolution:
    """One model's exact derivation, its theta = A w + b form (if linear) and its numeric check."""

    derivation: ModelDerivation
    reparam: Reparameterisation | None
    coefficients_initial: tuple[sp.Expr, ...]
    coefficients_final: tuple[sp.Expr, ...]
    verification: Verification

    @property
    def name(self) -> str:
        """The model's label, f1, f2, ..."""
        return self.derivation.model.name

    @property
    def changes(self) -> tuple[sp.Expr, ...]:
        """How far each basis coefficient moved over the T steps."""
        return tuple(sp.expand(b - a) for a, b in zip(self.coefficients_initial, self.coefficients_final))


@dataclass(frozen=True)
class Comparison:
    """How the models' moves compare, coefficient by coefficient, against the first model."""

    basis: Basis
    ratios: tuple[tuple[sp.Expr | None, ...], ...]  # per model, per basis function; None where undefined
    same_function_class: bool | None  # None when some model is not linear in its parameters
    same_initial_function: bool


@dataclass(frozen=True)
class Solution:
    """The verified answer to a :class:`Problem`."""

    problem: Problem
    models: tuple[ModelSolution, ...]
    comparison: Comparison

    @property
    def max_rel_error(self) -> float:
        """Largest float64 discrepancy over every check of every model."""
        return max(m.verification.max_rel_error for m in self.models)

    def _repr_latex_(self) -> str:
        from symreparam.render import render_latex_summary

        return render_latex_summary(self)


@dataclass(frozen=True)
class Analysis:
    """Everything exact about a problem, before the float check: what ``solve`` verifies and what an
    exercise family derives once with its drawn quantities as symbols."""

    problem: Problem
    derivations: tuple[ModelDerivation, ...]
    basis: Basis
    reparams: tuple[Reparameterisation | None, ...]
    coefficients: tuple[tuple[tuple[sp.Expr, ...], tuple[sp.Expr, ...]], ...]  # per model: (initial, final)
    comparison: Comparison


def analyse(problem: Problem) -> Analysis:
    """Derive every model, write the linear ones as theta = A w + b, and compare them (no float check)."""
    try:
        derivations = tuple(derive_model(problem, m) for m in problem.models)
    except SymreparamError as exc:
        if problem.origin is None:
            raise
        raise problem.origin.relabel(exc) from None
    inputs = problem.data.input_symbols
    basis = common_basis(_functions_of(derivations), inputs)
    reparams = tuple(reparameterisation(d.form, basis, inputs) if d.form is not None else None for d in derivations)
    coeffs = tuple((coefficients(d.function_initial, basis, inputs), coefficients(d.function_final, basis, inputs))
                   for d in derivations)
    changes = [tuple(sp.expand(b - a) for a, b in zip(*c)) for c in coeffs]
    return Analysis(problem, derivations, basis, reparams, coeffs, _compare(changes, reparams, derivations, basis))


def solve(problem: Problem | str | Path | None = None, **fields) -> Solution:
    """Solve a problem exactly and check it in float64.

    ``solve()`` is the reference exercise; ``solve("problem.toml")`` reads a problem file;
    ``solve(models=[...], init=[...], data=[...], lr="0.1", steps=1, loss="mse")`` builds one from
    strings as the CLI does. Raises a ``SymreparamError`` for bad input or a failed check.
    """
    if problem is None:
        problem = build_problem(**fields) if fields else reference_problem()
    elif isinstance(problem, (str, Path)):
        problem = load_problem(problem)
    return verify_analysis(analyse(problem))


def verify_analysis(a: Analysis) -> Solution:
    """Check an analysis in float64, model by model, and return it as a verified :class:`Solution`.

    Raises :class:`~symreparam.errors.VerificationError` on any disagreement.
    """
    models = tuple(
        ModelSolution(d, r, c[0], c[1], verify_model(a.problem, d, r, a.basis, c))
        for d, r, c in zip(a.derivations, a.reparams, a.coefficients)
    )
    return Solution(a.problem, models, a.comparison)


def _functions_of(derivations: tuple[ModelDerivation, ...]):
    for d in derivations:
        yield d.function_initial
        yield d.function_final
        if d.form is not None:
            yield from d.form.features
            yield d.form.offset


def _compare(changes, reparams, derivations, basis: Basis) -> Comparison:
    first = changes[0]
    ratios = tuple(tuple(None if base == 0 else sp.cancel(change / base) for base, change in zip(first, row))
                   for row in changes)
    if all(r is not None for r in reparams):
        same_class = all(same_function_class(reparams[0], r) for r in reparams[1:])
    else:
        same_class = None
    f0 = derivations[0].function_initial
    same_start = all(sp.expand(d.function_initial - f0) == 0 for d in derivations[1:])
    return Comparison(basis, ratios, same_class, same_start)
