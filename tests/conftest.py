"""Shared test helpers."""

from __future__ import annotations

import sympy as sp

from symreparam.parse import symbol


def R(p: int, q: int = 1) -> sp.Rational:
    """An exact rational, short to write in expected-value tables."""
    return sp.Rational(p, q)


def S(name: str) -> sp.Symbol:
    """The project's symbol of that name (real, shared with the parser)."""
    return symbol(name)
