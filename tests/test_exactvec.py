"""Vectorised exact evaluation against SymPy's own substitution, including int64 overflow."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symreparam.exactvec import NotRational, compile_rational, evaluate, points

a, b, c = sp.symbols("a b c")


def _check(expr, values):
    rf = compile_rational(expr, (a, b, c))
    pts = points({name: vals for name, vals in values.items()})
    out = evaluate(rf, pts)
    for v in range(pts.size):
        subs = {s: sp.Rational(*values[s.name][v]) for s in (a, b, c)}
        expected = expr.xreplace(subs)
        n, d = out.fraction(v)
        if expected.is_finite is False or expected.has(sp.zoo, sp.nan):
            assert d == 0
        else:
            assert d > 0 and Fraction(n, d) == Fraction(int(expected.p), int(expected.q))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-9, 9), st.integers(1, 12)), min_size=9, max_size=9),
       st.sampled_from([
           a * b / c - 3 * a**2 + sp.Rational(1, 7),
           (a - b) ** 3 / (c**2 + 1) + a / 5,
           2 / (a + b * c + 100) - c,
           (a * c**2 * b - 2 * a * b + 7) / (3 * c),
       ]))
def test_matches_sympy_substitution(raw, expr):
    values = {"a": raw[0:3], "b": raw[3:6], "c": raw[6:9]}
    _check(expr, values)


def test_overflow_falls_back_to_python_integers():
    expr = (a * 10**6 + b) ** 6 / (c + 1)
    values = {"a": [(999, 1), (-5, 3)], "b": [(7, 11), (1, 1)], "c": [(2, 1), (1, 9)]}
    _check(expr, values)


def test_undefined_variants_have_zero_denominator():
    rf = compile_rational(1 / (a - b), (a, b, c))
    out = evaluate(rf, points({"a": [(1, 1), (2, 1)], "b": [(1, 1), (1, 1)], "c": [(0, 1), (0, 1)]}))
    assert out.fraction(0)[1] == 0 and out.fraction(1) == (1, 1)


def test_refuses_irrational_forms():
    with pytest.raises(NotRational):
        compile_rational(sp.sqrt(a), (a, b, c))
    with pytest.raises(NotRational):
        compile_rational(a + sp.Symbol("z"), (a, b, c))
