"""Shared test helpers."""

from __future__ import annotations

import sympy as sp
from click.testing import CliRunner

from symreparam.cli import cli
from symreparam.parse import symbol


def R(p: int, q: int = 1) -> sp.Rational:
    """An exact rational, short to write in expected-value tables."""
    return sp.Rational(p, q)


def S(name: str) -> sp.Symbol:
    """The project's symbol of that name (real, shared with the parser)."""
    return symbol(name)


def run(*args: str, code: int = 0):
    """Invoke the CLI through click's runner; assert the exit code and that no traceback escaped."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result
