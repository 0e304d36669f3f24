"""Reparameterisation analysis: write models linear in their parameters as theta = A w + b.

theta holds the coefficients of a common basis of the function class (for straight lines: the slope,
the coefficient of x, and the bias, the coefficient of 1). Two models with the same affine image
{A w + b} span the same function class; P = A A^T is the preconditioner that gradient descent on w
applies to gradient descent on theta.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sympy as sp

from symreparam.linalg import rank, to_domain


@dataclass(frozen=True)
class Basis:
    """Basis functions of the inputs (e.g. ``(x, 1)``) and their names (e.g. ``("slope", "bias")``)."""

    functions: tuple[sp.Expr, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LinearForm:
    """f(x; w) = offset(x) + sum_j w_j * features[j](x): a model that is affine in its parameters.

    ``terms`` holds the same split by input-dependent term, so that the function at any parameter
    vector is a few rational multiply-adds instead of a substitution and an expansion.
    """

    features: tuple[sp.Expr, ...]
    offset: sp.Expr
    terms: tuple[tuple[sp.Expr, sp.Expr, tuple[sp.Expr, ...]], ...]  # (term, offset coeff, feature coeffs)

    def function(self, values: Sequence[sp.Expr]) -> sp.Expr:
        """The model at parameters ``values`` as an expanded function of the inputs."""
        return sp.Add(*(
            (c0 + sum((w * c for w, c in zip(values, cs) if c != 0), sp.Integer(0))) * term
            for term, c0, cs in self.terms
        ))


@dataclass(frozen=True)
class Reparameterisation:
    """theta = A w + b over a basis, with P = A A^T."""

    A: sp.ImmutableMatrix
    b: sp.ImmutableMatrix
    P: sp.ImmutableMatrix

    def theta(self, w: Sequence[sp.Expr]) -> sp.ImmutableMatrix:
        """The basis coefficients theta = A w + b of a parameter vector."""
        return sp.ImmutableMatrix(self.A * sp.Matrix(list(w)) + self.b)


def linear_form(expr: sp.Expr, params: Sequence[sp.Symbol], inputs: Sequence[sp.Symbol]) -> LinearForm | None:
    """Split a model into features and offset when it is affine in ``params``; None otherwise.

    The test is structural on the expanded expression, so a model that is linear only after an
    identity SymPy does not apply is classed as non-linear, which is always safe.
    """
    features = {p: sp.Integer(0) for p in params}
    offset = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, wpart = term.as_independent(*params, as_Add=False)
        if wpart == 1:
            offset += coeff
        elif wpart in features:
            features[wpart] += coeff
        else:
            return None
    feats = tuple(features[p] for p in params)
    parts = [decompose(f, inputs) for f in feats]
    base = decompose(offset, inputs)
    keys = list(dict.fromkeys([*base, *(k for part in parts for k in part)]))
    zero = sp.Integer(0)
    terms = tuple((k, base.get(k, zero), tuple(part.get(k, zero) for part in parts)) for k in keys)
    return LinearForm(feats, offset, terms)


def decompose(expr: sp.Expr, inputs: Sequence[sp.Symbol]) -> dict[sp.Expr, sp.Expr]:
    """Coefficients of ``expr`` on the input-dependent terms it is a sum of: {basis function: coefficient}."""
    out: dict[sp.Expr, sp.Expr] = {}
    for term in sp.Add.make_args(sp.expand(expr)):
        if term == 0:
            continue
        coeff, fun = term.as_independent(*inputs, as_Add=False) if inputs else (term, sp.Integer(1))
        out[fun] = out.get(fun, sp.Integer(0)) + coeff
    return {k: v for k, v in out.items() if v != 0}


def _degree(fun: sp.Expr, inputs: Sequence[sp.Symbol]) -> int:
    if fun.is_polynomial(*inputs):
        return int(sp.Poly(fun, *inputs).total_degree()) if inputs else 0
    return -1


def common_basis(exprs: Iterable[sp.Expr], inputs: Sequence[sp.Symbol]) -> Basis:
    """The union of the terms of ``exprs``, highest degree first and the constant last."""
    seen: set[sp.Expr] = set()
    for expr in exprs:
        seen.update(decompose(expr, inputs))
    if not seen:
        seen.add(sp.Integer(1))
    funcs = sorted(seen, key=lambda f: (f == 1, -_degree(f, inputs), sp.default_sort_key(f)))
    return Basis(tuple(funcs), tuple(_label(f, inputs) for f in funcs))


def _label(fun: sp.Expr, inputs: Sequence[sp.Symbol]) -> str:
    if fun == 1:
        return "bias"
    if len(inputs) == 1 and fun == inputs[0]:
        return "slope"
    return f"coefficient of {sp.sstr(fun)}"


def coefficients(expr: sp.Expr, basis: Basis, inputs: Sequence[sp.Symbol]) -> tuple[sp.Expr, ...]:
    """The coefficients of ``expr`` on ``basis`` (which must contain all of its terms)."""
    parts = decompose(expr, inputs)
    missing = set(parts) - set(basis.functions)
    if missing:  # a programming error: the basis is always built from these expressions
        raise ValueError(f"basis lacks {missing}")
    return tuple(parts.get(f, sp.Integer(0)) for f in basis.functions)


def reparameterisation(form: LinearForm, basis: Basis, inputs: Sequence[sp.Symbol]) -> Reparameterisation:
    """A (basis x params), b and P = A A^T for a linear model."""
    cols = [coefficients(feature, basis, inputs) for feature in form.features]
    k = len(basis.functions)
    a = sp.ImmutableMatrix(k, len(cols), lambda i, j: cols[j][i])
    b = sp.ImmutableMatrix(k, 1, list(coefficients(form.offset, basis, inputs)))
    return Reparameterisation(a, b, sp.ImmutableMatrix(a * a.T))


def same_function_class(first: Reparameterisation, other: Reparameterisation) -> bool:
    """True when {A1 w + b1} and {A2 v + b2} are the same affine set of basis coefficients."""
    a1, a2 = first.A, other.A
    r1 = _rank(a1)
    if r1 != _rank(a2) or _rank(a1.row_join(a2)) != r1:
        return False
    return _rank(a1.row_join(other.b - first.b)) == r1


def _rank(m: sp.MatrixBase) -> int:
    if m.cols == 0 or m.rows == 0:
        return 0
    return rank(to_domain(m.tolist()))
