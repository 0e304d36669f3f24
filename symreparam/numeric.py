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

# A node returns (value, derivative, size, derivative size). The derivative (N, p) and its size are
# None when the node does not depend on the parameters. ``size`` is the sum of the magnitudes of the
# terms the value was computed from, carried through every operation (a first-order running error
# bound: the rounding error of the value is within a small multiple of eps * size). It is the scale at
# which a value that is exactly zero after cancellation (0.1*3 - 0.3) is compared with its float64
# noise. Nodes are called with the points x, the parameters w and the parameters' own sizes (|w| for
# exact parameters; larger for parameters that float64 computed, such as a re-computed path).
Dual = tuple[np.ndarray, "np.ndarray | None", np.ndarray, "np.ndarray | None"]
Node = Callable[[np.ndarray, np.ndarray, np.ndarray], Dual]


def _chain(v, du, su, dsu, u, slope, curve) -> Dual:
    """f(u) from u's dual: value v = f(u), slope f'(u), curvature f''(u) (used only for sizes)."""
    size = np.abs(v) + np.abs(slope) * su
    if du is None:
        return v, None, size, None
    der = slope[:, None] * du
    der_size = np.abs(slope)[:, None] * dsu + (np.abs(curve) * su)[:, None] * np.abs(du)
    return v, der, size, der_size


def _unary(value: Callable, slope: Callable, curve: Callable) -> Callable[[Node], Node]:
    """Chain rule for f(u): value f(u), derivative f'(u) * du."""

    def make(arg: Node) -> Node:
        def run(x, w, ws):
            u, du, su, dsu = arg(x, w, ws)
            v = value(u)
            return _chain(v, du, su, dsu, u, slope(u, v), curve(u, v))

        return run

    return make


_FUNCTIONS: dict[type, Callable[[Node], Node]] = {
    sp.exp: _unary(np.exp, lambda u, v: v, lambda u, v: v),
    sp.log: _unary(np.log, lambda u, v: 1.0 / u, lambda u, v: -1.0 / (u * u)),
    sp.sin: _unary(np.sin, lambda u, v: np.cos(u), lambda u, v: -v),
    sp.cos: _unary(np.cos, lambda u, v: -np.sin(u), lambda u, v: -v),
    sp.tanh: _unary(np.tanh, lambda u, v: 1.0 - v * v, lambda u, v: -2.0 * v * (1.0 - v * v)),
    sp.Abs: _unary(np.abs, lambda u, v: np.sign(u), lambda u, v: np.zeros_like(u)),
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
class Evaluation:
    """A model at N points: values (N,), Jacobian (N, p), and the sizes that bound their rounding.

    ``size`` and ``jacobian_size`` are the sums of the magnitudes of the terms each value was computed
    from (see :data:`Dual`); a float64 value is within a small multiple of eps * size of the exact one.
    """

    value: np.ndarray
    jacobian: np.ndarray
    size: np.ndarray
    jacobian_size: np.ndarray


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
        out = self.evaluate(x, w)
        return out.value, out.jacobian

    def evaluate(self, x: np.ndarray, w: Sequence[float] | np.ndarray,
                 w_size: np.ndarray | None = None) -> Evaluation:
        """Values, Jacobian and their sizes at points ``x`` (N, d); ``w`` as for ``__call__``.

        ``w_size`` (shaped like ``w``) is the size of parameters that were themselves computed in
        float64 (default |w|: exact parameters rounded once)."""
        x = np.asarray(x, dtype=float)
        w = np.asarray(w, dtype=float)
        if w.ndim == 1:
            w = np.broadcast_to(w, (x.shape[0], self.n_params))
        ws = np.abs(w) if w_size is None else np.broadcast_to(np.asarray(w_size, dtype=float), w.shape)
        with np.errstate(all="ignore"):
            value, der, size, der_size = self.root(x, w, ws)
        n, p = x.shape[0], self.n_params
        if der is None:
            der = der_size = np.zeros((n, p))
        return Evaluation(
            value=np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy(),
            jacobian=np.broadcast_to(der, (n, p)).copy(),
            size=np.broadcast_to(np.asarray(size, dtype=float), (n,)).copy(),
            jacobian_size=np.broadcast_to(der_size, (n, p)).copy(),
        )


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
            return lambda x, w, ws: (np.full(x.shape[0], constant), None, np.full(x.shape[0], abs(constant)), None)
        if node.is_Symbol:
            if node in input_index:
                col = input_index[node]
                return lambda x, w, ws: (x[:, col], None, np.abs(x[:, col]), None)
            if node in param_index:
                j = param_index[node]
                unit = np.zeros(p)
                unit[j] = 1.0

                def parameter(x, w, ws):
                    der = np.broadcast_to(unit, (x.shape[0], p))
                    return w[:, j], der, ws[:, j], der

                return parameter
            raise VerificationError("verification", f"cannot evaluate the unknown symbol {node}")
        if node.is_Add:
            parts = [build(a) for a in node.args]
            return lambda x, w, ws: _sum(part(x, w, ws) for part in parts)
        if node.is_Mul:
            parts = [build(a) for a in node.args]
            return lambda x, w, ws: _product([part(x, w, ws) for part in parts])
        if node.is_Pow:
            return _power(build(node.base), node.exp, build(node.exp))
        for kind, make in _FUNCTIONS.items():
            if isinstance(node, kind):
                return make(build(node.args[0]))
        raise VerificationError("verification", f"cannot evaluate {type(node).__name__} in float64")

    return CompiledModel(build(expr), p)


def _add(a, b):
    """a + b where None is zero."""
    return b if a is None else a if b is None else a + b


def _sum(duals) -> Dual:
    value, der, size, der_size = 0.0, None, 0.0, None
    for v, d, s, ds in duals:
        value = value + v
        size = size + s
        der = _add(der, d)
        der_size = _add(der_size, ds)
    return value, der, size, der_size


def _product(duals: list[Dual]) -> Dual:
    value, der, size, der_size = duals[0]
    for v, d, s, ds in duals[1:]:
        # (a b)' = a' b + a b'; sizes follow the same rule on the magnitudes
        der = _add(None if der is None else der * v[:, None], None if d is None else d * value[:, None])
        der_size = _add(None if der_size is None else der_size * s[:, None],
                        None if ds is None else ds * size[:, None])
        value = value * v
        size = size * s
    return value, der, size, der_size


def _power(base: Node, exponent_expr: sp.Expr, exponent: Node) -> Node:
    if exponent_expr.is_Number:
        e = exact_float(exponent_expr)

        def run(x, w, ws):
            b, db, sb, dsb = base(x, w, ws)
            return _chain(np.power(b, e), db, sb, dsb, b, e * np.power(b, e - 1.0), e * (e - 1.0) * np.power(b, e - 2.0))

        return run

    def general(x, w, ws):
        # b^e = exp(e log b): d = b^e (e' log b + e b'/b); the size of the exponent e log b is carried
        # into exp's rule, so an error in either b or e counts at its weight
        b, db, sb, dsb = base(x, w, ws)
        e, de, se, dse = exponent(x, w, ws)
        v = np.power(b, e)
        log_b = np.log(b)
        inner_size = np.abs(log_b) * se + np.abs(e / b) * sb
        der = _add(None if de is None else (v * log_b)[:, None] * de,
                   None if db is None else (v * e / b)[:, None] * db)
        size = np.abs(v) * (1.0 + inner_size)
        der_size = None
        if der is not None:
            # d(b^e) = b^e d(e log b): the size of b^e times that of d(e log b), plus the size of the
            # exponent's own error carried into the derivative, |der| * inner_size
            inner = _add(None if dse is None else np.abs(log_b)[:, None] * dse,
                         None if dsb is None else np.abs(e / b)[:, None] * dsb)
            der_size = np.abs(v)[:, None] * inner + np.abs(der) * inner_size[:, None]
        return v, der, size, der_size

    return general
