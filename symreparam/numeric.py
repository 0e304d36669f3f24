"""Float64 evaluation of models with forward-mode derivatives, independent of SymPy's ``diff``.

A model expression is compiled once into a tree of NumPy closures; each closure returns the value at
N points and its derivatives with respect to the parameters (an explicit chain rule). Only the
model's own expression tree is read from SymPy, never a derivative SymPy computed, so a wrong
symbolic derivative cannot agree with this by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symreparam.errors import VerificationError

# value, derivative (N, p) or None when the node does not depend on the parameters
Dual = tuple[np.ndarray, "np.ndarray | None"]
Node = Callable[[np.ndarray, np.ndarray], Dual]


def _unary(value: Callable, slope: Callable) -> Callable[[Node], Node]:
    """Chain rule for f(u): value f(u), derivative f'(u) * du."""

    def make(arg: Node) -> Node:
        def run(x, w):
            u, du = arg(x, w)
            v = value(u)
            return v, None if du is None else slope(u, v)[:, None] * du

        return run

    return make


_FUNCTIONS: dict[type, Callable[[Node], Node]] = {
    sp.exp: _unary(np.exp, lambda u, v: v),
    sp.log: _unary(np.log, lambda u, v: 1.0 / u),
    sp.sin: _unary(np.sin, lambda u, v: np.cos(u)),
    sp.cos: _unary(np.cos, lambda u, v: -np.sin(u)),
    sp.tanh: _unary(np.tanh, lambda u, v: 1.0 - v * v),
    sp.Abs: _unary(np.abs, lambda u, v: np.sign(u)),
}


def exact_float(value: sp.Expr) -> float:
    """A real exact constant as the nearest float64 (rationals by exact integer division)."""
    if value.is_Rational:
        try:
            return value.p / value.q
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")
    number = sp.N(value, 30)
    if not number.is_real:
        number = complex(number)
        if abs(number.imag) > 1e-25 * max(1.0, abs(number.real)):
            return float("nan")
        return number.real
    return float(number)


@dataclass(frozen=True)
class CompiledModel:
    """A model compiled for float64 evaluation with parameter derivatives."""

    root: Node
    n_params: int

    def __call__(self, x: np.ndarray, w: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (N,) and Jacobian (N, p) at points ``x`` (N, d).

        ``w`` is one parameter vector (p,) shared by all points, or one per point (N, p), which is how
        many variants of an exercise are checked in a single vectorised pass.
        """
        x = np.asarray(x, dtype=float)
        w = np.asarray(w, dtype=float)
        if w.ndim == 1:
            w = np.broadcast_to(w, (x.shape[0], self.n_params))
        with np.errstate(all="ignore"):
            value, der = self.root(x, w)
        n = x.shape[0]
        value = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        if der is None:
            der = np.zeros((n, self.n_params))
        return value, np.broadcast_to(der, (n, self.n_params)).copy()


def compile_model(expr: sp.Expr, inputs: Sequence[sp.Symbol], params: Sequence[sp.Symbol]) -> CompiledModel:
    """Compile ``expr`` (the model as the user wrote it, not a derivative) for :class:`CompiledModel`."""
    input_index = {s: i for i, s in enumerate(inputs)}
    param_index = {s: j for j, s in enumerate(params)}
    p = len(params)
    cache: dict[sp.Basic, Node] = {}

    def build(node: sp.Basic) -> Node:
        if node in cache:
            return cache[node]
        out = _build(node)
        cache[node] = out
        return out

    def _build(node: sp.Basic) -> Node:
        if node.is_Number or node.is_NumberSymbol:
            constant = exact_float(node)
            return lambda x, w: (np.full(x.shape[0], constant), None)
        if node.is_Symbol:
            if node in input_index:
                col = input_index[node]
                return lambda x, w: (x[:, col], None)
            if node in param_index:
                j = param_index[node]
                unit = np.zeros(p)
                unit[j] = 1.0
                return lambda x, w: (w[:, j], np.broadcast_to(unit, (x.shape[0], p)))
            raise VerificationError("verification", f"cannot evaluate the unknown symbol {node}")
        if node.is_Add:
            parts = [build(a) for a in node.args]
            return lambda x, w: _sum(part(x, w) for part in parts)
        if node.is_Mul:
            parts = [build(a) for a in node.args]
            return lambda x, w: _product([part(x, w) for part in parts])
        if node.is_Pow:
            return _power(build(node.base), node.exp, build(node.exp))
        for kind, make in _FUNCTIONS.items():
            if isinstance(node, kind):
                return make(build(node.args[0]))
        raise VerificationError("verification", f"cannot evaluate {type(node).__name__} in float64")

    return CompiledModel(build(expr), p)


def _sum(duals) -> Dual:
    value, der = 0.0, None
    for v, d in duals:
        value = value + v
        if d is not None:
            der = d if der is None else der + d
    return value, der


def _product(duals: list[Dual]) -> Dual:
    value = duals[0][0]
    der = duals[0][1]
    for v, d in duals[1:]:
        # (a b)' = a' b + a b'
        new_der = None
        if der is not None:
            new_der = der * v[:, None]
        if d is not None:
            term = d * value[:, None]
            new_der = term if new_der is None else new_der + term
        value = value * v
        der = new_der
    return value, der


def _power(base: Node, exponent_expr: sp.Expr, exponent: Node) -> Node:
    if exponent_expr.is_Number:
        e = exact_float(exponent_expr)

        def run(x, w):
            b, db = base(x, w)
            v = np.power(b, e)
            if db is None:
                return v, None
            return v, (e * np.power(b, e - 1.0))[:, None] * db

        return run

    def general(x, w):
        # b^e = exp(e log b): d = b^e (e' log b + e b'/b)
        b, db = base(x, w)
        e, de = exponent(x, w)
        v = np.power(b, e)
        der = None
        if de is not None:
            der = (v * np.log(b))[:, None] * de
        if db is not None:
            term = (v * e / b)[:, None] * db
            der = term if der is None else der + term
        return v, der

    return general
