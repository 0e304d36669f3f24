"""Exact evaluation of one rational function at many rational points at once.

An exercise family derives its answers once, as rational functions of the drawn quantities; each
variant then only substitutes numbers. Doing that with SymPy per variant costs milliseconds. Here a
rational function N/D is stored as two polynomials with integer coefficients and evaluated for all
variants together with NumPy int64 arithmetic: with s_i = p_i / q_i and d_i the degree of N in s_i,

    N(p / q) = [sum_m c_m prod_i p_i^e_mi q_i^(d_i - e_mi)] / prod_i q_i^d_i,

all integers. A float64 shadow of the same sums bounds every intermediate; where it could exceed
int64, that answer is recomputed for all variants with Python integers (NumPy object arrays), so the
result is always exact. Results are reduced fractions (numerator, denominator > 0); a zero
denominator marks a variant at which the function is undefined.
"""

from __future__ import annotations

import functools
from fractions import Fraction
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

_SAFE = 2.0**62  # bound on any int64 intermediate


@dataclass(frozen=True)
class Polynomial:
    """sum_m coeffs[m] prod_i s_i^exps[m][i], integer coefficients; ``degrees[i]`` = max_m exps[m][i]."""

    coeffs: tuple[int, ...]
    exps: tuple[tuple[int, ...], ...]
    degrees: tuple[int, ...]


@dataclass(frozen=True)
class RationalFunction:
    """(num / num_scale) / (den / den_scale) with integer polynomials ``num`` and ``den``."""

    symbols: tuple[str, ...]
    num: Polynomial
    den: Polynomial
    num_scale: int
    den_scale: int


class NotRational(ValueError):
    """The expression is not a rational function of the given symbols."""


def _polynomial(terms, nvars: int) -> tuple[Polynomial, int]:
    """An integer polynomial from (monomial, rational coefficient) terms, and the positive integer
    it was multiplied by to clear denominators."""
    terms = list(terms) or [((0,) * nvars, 0)]
    scale = 1
    for _, c in terms:
        scale = math.lcm(scale, int(c.denominator))
    coeffs = tuple(int(c.numerator) * (scale // int(c.denominator)) for _, c in terms)
    exps = tuple(tuple(int(e) for e in monom) for monom, _ in terms)
    degrees = tuple(max((m[i] for m in exps), default=0) for i in range(nvars))
    return Polynomial(coeffs, exps, degrees), scale


@functools.lru_cache(maxsize=16)
def field_of(symbols: tuple[sp.Symbol, ...]):
    """The field of rational functions of ``symbols`` over the rationals (shared, one per tuple)."""
    from sympy.polys.fields import field

    return field(symbols, sp.QQ)[0]


def compile_rational(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> RationalFunction:
    """Split ``expr`` into integer numerator and denominator polynomials in ``symbols``.

    Raises :class:`NotRational` when ``expr`` involves anything else (other symbols, sqrt, exp).
    """
    expr = sp.sympify(expr, strict=True)
    extra = expr.free_symbols - set(symbols)
    if extra:
        raise NotRational(f"depends on {', '.join(sorted(s.name for s in extra))}")
    symbols = tuple(symbols)
    if symbols:
        try:
            value = field_of(symbols).from_expr(expr)
        except (ValueError, TypeError, sp.CoercionFailed, sp.PolynomialError) as exc:
            raise NotRational(str(exc) or f"{expr} is not rational") from None
        return compile_field_element(value, symbols)
    if not expr.is_Rational:
        raise NotRational(f"{expr} is not a rational number")
    (num_poly, num_scale), (den_poly, den_scale) = (_polynomial([((), Fraction(int(expr.p)))], 0),
                                                    _polynomial([((), Fraction(int(expr.q)))], 0))
    return RationalFunction((), num_poly, den_poly, num_scale, den_scale)


def compile_field_element(value, symbols: Sequence[sp.Symbol]) -> RationalFunction:
    """Like :func:`compile_rational`, for an element of the field of rational functions of ``symbols``
    (as :mod:`symreparam.malrules` computes them): its numerator and denominator are at hand."""
    symbols = tuple(symbols)
    num = _polynomial(value.numer.terms(), len(symbols))
    den = _polynomial(value.denom.terms(), len(symbols))
    (num_poly, num_scale), (den_poly, den_scale) = num, den
    return RationalFunction(tuple(s.name for s in symbols), num_poly, den_poly, num_scale, den_scale)


@dataclass(frozen=True)
class Values:
    """Exact rationals for V variants: ``num / den`` with den > 0 and gcd 1 (den == 0: undefined)."""

    num: np.ndarray
    den: np.ndarray

    def fraction(self, v: int) -> tuple[int, int]:
        """Numerator and denominator of variant ``v`` as Python ints."""
        return int(self.num[v]), int(self.den[v])

    def floats(self) -> np.ndarray:
        """The values rounded to float64 (nan where undefined)."""
        with np.errstate(all="ignore"):
            if self.num.dtype == object:
                return np.array([_div(int(n), int(d)) for n, d in zip(self.num, self.den)], dtype=float)
            out = np.where(self.den != 0, self.num / np.where(self.den == 0, 1, self.den), np.nan)
            # int64 beyond 2**53 is rounded to float64 before NumPy divides: round those once, exactly,
            # as Python's int division does, so a variant's figures do not depend on its batch
            wide = (np.abs(self.num) > 2**53) | (self.den > 2**53)
            for i in np.flatnonzero(wide):
                out[i] = _div(int(self.num[i]), int(self.den[i]))
            return out


def _div(n: int, d: int) -> float:
    if d == 0:
        return float("nan")
    try:
        return n / d
    except OverflowError:
        return math.copysign(float("inf"), n) if n else 0.0


@dataclass(frozen=True)
class Points:
    """Values of the symbols for V variants: symbol name -> (numerators, positive denominators)."""

    nums: Mapping[str, np.ndarray]
    dens: Mapping[str, np.ndarray]
    size: int


def points(values: Mapping[str, Sequence[tuple[int, int]]]) -> Points:
    """Points from {name: [(p, q), ...]} with q > 0, one pair per variant."""
    size = len(next(iter(values.values()))) if values else 0
    nums = {k: np.array([p for p, _ in v], dtype=np.int64) for k, v in values.items()}
    dens = {k: np.array([q for _, q in v], dtype=np.int64) for k, v in values.items()}
    return Points(nums, dens, size)


def _sum(poly: Polynomial, symbols: Sequence[str], pts: Points, exact: bool) -> tuple[np.ndarray, np.ndarray, bool]:
    """(sum_m c_m prod p^e q^(d-e), prod q^d) for every variant; the flag says whether int64 sufficed."""
    dtype = object if exact else np.int64
    size = pts.size
    if not exact and any(abs(c) >= _SAFE for c in poly.coeffs):
        return np.zeros(size), np.ones(size), False
    total = np.zeros(size, dtype=dtype)
    shadow = np.zeros(size)
    powers: dict[tuple[str, int, bool], np.ndarray] = {}

    def power(name: str, e: int, of_num: bool) -> np.ndarray:
        key = (name, e, of_num)
        if key not in powers:
            base = (pts.nums if of_num else pts.dens)[name].astype(dtype)
            powers[key] = base**e if e else np.ones(size, dtype=dtype)
        return powers[key]

    for coeff, exps in zip(poly.coeffs, poly.exps):
        term = np.full(size, coeff, dtype=dtype)
        bound = np.full(size, float(abs(coeff)))
        for name, e, d in zip(symbols, exps, poly.degrees):
            if d == 0:
                continue
            factor = power(name, e, True) * power(name, d - e, False)
            term = term * factor
            bound = bound * (np.abs(pts.nums[name].astype(float)) ** e) * (pts.dens[name].astype(float) ** (d - e))
        total = total + term
        shadow = shadow + bound
    scale = np.ones(size, dtype=dtype)
    scale_bound = np.ones(size)
    for name, d in zip(symbols, poly.degrees):
        if d:
            scale = scale * power(name, d, False)
            scale_bound = scale_bound * pts.dens[name].astype(float) ** d
    fits = exact or bool(np.all(shadow < _SAFE) and np.all(scale_bound < _SAFE))
    return total, scale, fits


def evaluate(rf: RationalFunction, pts: Points) -> Values:
    """Evaluate ``rf`` exactly at every variant of ``pts`` (int64 where safe, Python ints otherwise)."""
    for exact in (False, True):
        n_sum, n_scale, ok_n = _sum(rf.num, rf.symbols, pts, exact)
        d_sum, d_scale, ok_d = _sum(rf.den, rf.symbols, pts, exact)
        if not (ok_n and ok_d):
            continue
        # value = (n_sum / n_scale / num_scale) / (d_sum / d_scale / den_scale)
        num_parts = (n_sum, d_scale, rf.den_scale)
        den_parts = (d_sum, n_scale, rf.num_scale)
        if not exact and max(rf.den_scale, rf.num_scale) >= _SAFE:
            continue
        if not exact:
            bound_n = np.abs(n_sum.astype(float)) * d_scale.astype(float) * rf.den_scale
            bound_d = np.abs(d_sum.astype(float)) * n_scale.astype(float) * rf.num_scale
            if not (np.all(bound_n < _SAFE) and np.all(bound_d < _SAFE)):
                continue
        num = num_parts[0] * num_parts[1] * num_parts[2]
        den = den_parts[0] * den_parts[1] * den_parts[2]
        return _reduce(num, den, exact)
    raise AssertionError("unreachable: the exact pass always fits")


def evaluate_many(rfs: Sequence[RationalFunction], pts: Points) -> list[Values]:
    """:func:`evaluate` of many rational functions at once, with the same results.

    A family compiles a few hundred answers sharing a few hundred distinct monomials. Evaluating them
    one by one costs thousands of small NumPy calls per batch, whatever its size; here every distinct
    monomial is computed once and all the sums, scales and reductions are a handful of operations on
    (functions x variants) arrays. A function whose float64 shadow could exceed int64 is left to
    :func:`evaluate`, which recomputes it with Python integers.
    """
    out: list[Values | None] = [None] * len(rfs)
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, rf in enumerate(rfs):
        groups.setdefault(rf.symbols, []).append(i)
    for symbols, members in groups.items():
        if pts.size:
            for i, value in zip(members, _evaluate_int64([rfs[i] for i in members], symbols, pts)):
                out[i] = value
    return [value if value is not None else evaluate(rf, pts) for rf, value in zip(rfs, out)]


BLOCK_ELEMENTS = 1 << 21  # elements of the largest temporary (16 MB): memory stays flat however many variants


@dataclass(frozen=True)
class _Plan:
    """The distinct monomials of functions of the same symbols, and how their terms combine."""

    exponents: np.ndarray  # (monomials, 2k): exponents of the symbols' numerators, then denominators
    index: np.ndarray  # (terms,): the monomial of every term of every polynomial
    coeffs: np.ndarray  # (terms, 1) int64
    starts: list[int]  # first term of every polynomial: numerator, denominator, numerator, ...
    scales: list[int]  # the monomial prod q^degree of every polynomial
    num_scales: np.ndarray  # (functions, 1)
    den_scales: np.ndarray


def _plan(rfs: Sequence[RationalFunction], k: int) -> _Plan:
    # every term of every polynomial as a monomial in the numerators p and denominators q of the
    # symbols, p^e q^(degree - e), as in _sum
    monomials: dict[tuple[int, ...], int] = {}
    term_monomial, term_coeff, starts, scales = [], [], [], []
    for rf in rfs:
        for poly in (rf.num, rf.den):
            starts.append(len(term_coeff))
            for coeff, exps in zip(poly.coeffs, poly.exps):
                key = (*exps, *(d - e for d, e in zip(poly.degrees, exps)))
                term_monomial.append(monomials.setdefault(key, len(monomials)))
                term_coeff.append(coeff)
            scales.append(monomials.setdefault((0,) * k + tuple(poly.degrees), len(monomials)))
    return _Plan(
        exponents=np.array(list(monomials), dtype=np.intp).reshape(len(monomials), 2 * k),
        index=np.array(term_monomial, dtype=np.intp),
        coeffs=np.array(term_coeff, dtype=np.int64)[:, None],
        starts=starts,
        scales=scales,
        num_scales=np.array([rf.num_scale for rf in rfs], dtype=np.int64)[:, None],
        den_scales=np.array([rf.den_scale for rf in rfs], dtype=np.int64)[:, None],
    )


def _evaluate_int64(rfs: Sequence[RationalFunction], symbols: tuple[str, ...], pts: Points) -> list[Values | None]:
    """The int64 pass of :func:`evaluate` for functions of the same symbols; None where it may overflow."""
    eligible = [max(rf.num_scale, rf.den_scale) < _SAFE and all(abs(c) < _SAFE for c in (*rf.num.coeffs, *rf.den.coeffs))
                for rf in rfs]
    chosen = [rf for rf, ok in zip(rfs, eligible) if ok]
    if not chosen or not pts.size:
        return [None] * len(rfs)
    plan = _plan(chosen, len(symbols))
    num = np.empty((len(chosen), pts.size), dtype=np.int64)
    den = np.empty((len(chosen), pts.size), dtype=np.int64)
    ok = np.ones(len(chosen), dtype=bool)
    block = max(16, BLOCK_ELEMENTS // max(len(plan.index), len(plan.exponents)))
    for start in range(0, pts.size, block):
        stop = min(start + block, pts.size)
        part = Points({n: v[start:stop] for n, v in pts.nums.items()}, {n: v[start:stop] for n, v in pts.dens.items()},
                      stop - start)
        ok &= _block(plan, symbols, part, num[:, start:stop], den[:, start:stop])
    # rows of the shared arrays, not copies: Values are never changed in place
    results = iter([Values(num[r], den[r]) if ok[r] else None for r in range(len(chosen))])
    return [next(results) if e else None for e in eligible]


def _block(plan: _Plan, symbols: tuple[str, ...], pts: Points, num_out: np.ndarray, den_out: np.ndarray) -> np.ndarray:
    """Evaluate a plan on a block of variants into ``num_out``/``den_out``; per function, whether it fits."""
    k, size = len(symbols), pts.size
    exponents = plan.exponents
    exact = np.ones((len(exponents), size), dtype=np.int64)
    bound = np.ones((len(exponents), size))
    for j in range(2 * k):
        top = int(exponents[:, j].max()) if len(exponents) else 0
        if top == 0:
            continue
        base = (pts.nums if j < k else pts.dens)[symbols[j % k]]
        powers = np.arange(top + 1)[:, None]
        # int64 powers may wrap where the float bound says so; those monomials are never trusted
        with np.errstate(all="ignore"):
            exact = exact * (base[None, :] ** powers)[exponents[:, j]]
            bound = bound * (np.abs(base.astype(float))[None, :] ** powers)[exponents[:, j]]
    with np.errstate(all="ignore"):
        sums = np.add.reduceat(plan.coeffs * exact[plan.index], plan.starts, axis=0)
        shadow = np.add.reduceat(np.abs(plan.coeffs.astype(float)) * bound[plan.index], plan.starts, axis=0)
    scale, scale_bound = exact[plan.scales], bound[plan.scales]
    fits = (shadow < _SAFE) & (scale_bound < _SAFE)
    n_sum, d_sum, n_scale, d_scale = sums[0::2], sums[1::2], scale[0::2], scale[1::2]
    with np.errstate(all="ignore"):
        bound_n = np.abs(n_sum.astype(float)) * d_scale.astype(float) * plan.den_scales.astype(float)
        bound_d = np.abs(d_sum.astype(float)) * n_scale.astype(float) * plan.num_scales.astype(float)
        ok = (fits[0::2] & fits[1::2] & (bound_n < _SAFE) & (bound_d < _SAFE)).all(axis=1)
        reduced = _reduce(n_sum * d_scale * plan.den_scales, d_sum * n_scale * plan.num_scales, False)
    num_out[...] = reduced.num
    den_out[...] = reduced.den
    return ok


def _reduce(num: np.ndarray, den: np.ndarray, exact: bool) -> Values:
    sign = np.where(den < 0, -1, 1)
    num = num * sign
    den = den * sign
    if exact:
        g = np.array([math.gcd(int(a), int(b)) or 1 for a, b in zip(num, den)], dtype=object)
        num, den = num // g, den // g
        small = all(abs(int(a)) < 2**62 and int(b) < 2**62 for a, b in zip(num, den))
        if small:
            return Values(num.astype(np.int64), den.astype(np.int64))
        return Values(num, den)
    g = np.gcd(num, den)
    g = np.where(g == 0, 1, g)
    return Values(num // g, den // g)
