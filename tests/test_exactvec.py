"""Vectorised exact evaluation against SymPy's own substitution, including int64 overflow."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from symreparam.exactvec import NotRational, compile_rational, evaluate, evaluate_many, points

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


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**5, 10**5), st.integers(1, 10**4)), min_size=12, max_size=12))
def test_many_at_once_gives_what_one_at_a_time_gives(raw):
    # small and large values alike: some functions fit int64 for every variant, some overflow and are
    # recomputed with Python integers, and some variants divide by zero
    exprs = [a * b / c - 3 * a**2 + sp.Rational(1, 7), (a - b) ** 3 / (c**2 + 1) + a / 5, 1 / (a - b),
             (a * 10**6 + b) ** 4 / (c + 1), sp.Integer(0), sp.Rational(-5, 3), c**3 * b**2 - a,
             sp.Rational(10**19, 3) * a]
    rfs = [compile_rational(e, (a, b, c)) for e in exprs]
    pts = points({"a": raw[0:4], "b": raw[4:8], "c": raw[8:12]})
    many = evaluate_many(rfs, pts)
    for rf, got in zip(rfs, many):
        alone = evaluate(rf, pts)
        assert got.num.tolist() == alone.num.tolist() and got.den.tolist() == alone.den.tolist()
        assert got.num.dtype == alone.num.dtype


def test_many_at_once_matches_sympy():
    exprs = [a * b / c - 3 * a**2, (a * 10**6 + b) ** 6 / (c + 1), 2 / (a + b * c + 100) - c]
    values = {"a": [(999, 1), (-5, 3), (0, 1)], "b": [(7, 11), (1, 1), (-2, 1)], "c": [(2, 1), (1, 9), (1, 1)]}
    many = evaluate_many([compile_rational(e, (a, b, c)) for e in exprs], points(values))
    for expr, got in zip(exprs, many):
        for v in range(3):
            expected = expr.xreplace({s: sp.Rational(*values[s.name][v]) for s in (a, b, c)})
            assert Fraction(*got.fraction(v)) == Fraction(int(expected.p), int(expected.q))


def test_the_shared_pass_handles_what_fits_and_leaves_the_rest():
    from symreparam.exactvec import _evaluate_int64

    rfs = [compile_rational(e, (a, b, c)) for e in (a * b / c, (a * 10**6 + b) ** 4 / (c + 1), sp.Integer(0))]
    pts = points({"a": [(1, 2), (3, 1)], "b": [(1, 1), (-1, 1)], "c": [(2, 3), (5, 1)]})
    done = _evaluate_int64(rfs, ("a", "b", "c"), pts)
    assert [d is not None for d in done] == [True, False, True]
    assert done[0].num.tolist() == [3, -3] and done[0].den.tolist() == [4, 5]


def test_blocks_of_variants_give_the_same_values(monkeypatch):
    import symreparam.exactvec as exactvec

    monkeypatch.setattr(exactvec, "BLOCK_ELEMENTS", 1)  # blocks of 16 variants
    exprs = [a * b / c - 3 * a**2, (a * 10**6 + b) ** 3 / (c + 1), 1 / (a - b), sp.Rational(3, 7)]
    rfs = [compile_rational(e, (a, b, c)) for e in exprs]
    # the middle function fits int64 in the first blocks only: the last variants are large
    values = {"a": [(i - 20, 1 + i % 3) for i in range(45)] + [(10**6, 1)] * 5,
              "b": [(i % 5, 1) for i in range(50)], "c": [(1 + i % 4, 1) for i in range(50)]}
    pts = points(values)
    for rf, got in zip(rfs, evaluate_many(rfs, pts)):
        alone = evaluate(rf, pts)
        assert got.num.tolist() == alone.num.tolist() and got.den.tolist() == alone.den.tolist()
