"""Tests of symreparam.parse: exact results, refusals with useful messages, and hostile input."""

from __future__ import annotations

import ast
import dataclasses
import keyword
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy import Abs, Integer, Rational, cos, exp, log, sin, sqrt, tanh

from symreparam import parse as parse_module
from symreparam.errors import ParseError, SymreparamError
from symreparam.parse import (
    DEFAULT_LIMITS,
    FUNCTIONS,
    Limits,
    parse_assignments,
    parse_expression,
    parse_number,
    split_assignment,
    symbol,
)

x, y, z = symbol("x"), symbol("y"), symbol("z")
a, s, t, u, v = symbol("a"), symbol("s"), symbol("t"), symbol("u"), symbol("v")
w1, w2, w3, w4 = symbol("w1"), symbol("w2"), symbol("w3"), symbol("w4")
eta, theta = symbol("eta"), symbol("theta")

FIELD = "--model 1"
PARSE_SOURCE = Path(parse_module.__file__).read_text(encoding="utf-8")


def sigmoid(arg: sympy.Expr) -> sympy.Expr:
    return 1 / (1 + exp(-arg))


def refuse(text: str, expected: str, **options: object) -> ParseError:
    """Assert that parsing ``text`` fails with ``expected`` in a one-line, field-led message."""
    with pytest.raises(ParseError, match=re.escape(expected) if expected else None) as info:
        parse_expression(text, FIELD, **options)
    error = info.value
    assert error.field == FIELD
    assert str(error).startswith(f"{FIELD}: ")
    assert "\n" not in str(error)
    assert "<unknown>" not in str(error) and "Traceback" not in str(error)
    return error


# --------------------------------------------------------------------------------------------------
# Exact results, strict grammar

EXACT = [
    ("0.1", Rational(1, 10)),
    ("2.50", Rational(5, 2)),
    ("1e-3", Rational(1, 1000)),
    ("1.5E2", Integer(150)),
    ("2.", Integer(2)),
    (".25", Rational(1, 4)),
    ("0.000", Integer(0)),
    ("1e+2", Integer(100)),
    ("1.25e-1", Rational(1, 8)),
    ("007", Integer(7)),
    ("0.3333333333333333", Rational(3333333333333333, 10**16)),
    ("123456789012345678901234567890", Integer(123456789012345678901234567890)),
    ("x", x),
    ("10*w3*x + w4", 10 * w3 * x + w4),
    ("(u+v)*x + (u-v)", (u + v) * x + (u - v)),
    ("exp(2*s)*x + t", exp(2 * s) * x + t),
    ("sigmoid(a*x)", 1 / (1 + exp(-a * x))),
    ("x^2", x**2),
    ("x**2", x**2),
    ("2**-1", Rational(1, 2)),
    ("-x**2", -(x**2)),
    ("(-x)**2", x**2),
    ("2**3**2", Integer(512)),
    ("x**y**z", x ** (y**z)),
    ("x**w1", x**w1),
    ("x**-2", x**-2),
    ("-2^2", Integer(-4)),
    ("+x", x),
    ("--x", x),
    ("-+-x", x),
    ("x - -y", x + y),
    ("1/3", Rational(1, 3)),
    ("x/2/y", x / 2 / y),
    ("x/(2*y)", x / (2 * y)),
    ("2*x*3", 6 * x),
    ("2*(x+1)", 2 * x + 2),
    ("(x+1)*2*y", (x + 1) * 2 * y),
    ("x - x", Integer(0)),
    ("0*x", Integer(0)),
    ("a - b + c", symbol("a") - symbol("b") + symbol("c")),
    ("log(x)", log(x)),
    ("ln(x)", log(x)),
    ("sqrt(x)", sqrt(x)),
    ("sqrt(8)", 2 * sqrt(2)),
    ("sqrt(1/4)", Rational(1, 2)),
    ("8**(1/3)", Integer(2)),
    ("x**(1/2)", sqrt(x)),
    ("sin(x) + cos(x)", sin(x) + cos(x)),
    ("tanh(w1*x + w2)", tanh(w1 * x + w2)),
    ("abs(x - 1)", Abs(x - 1)),
    ("abs(-3)", Integer(3)),
    ("exp(0)", Integer(1)),
    ("exp(log(2))", Integer(2)),
    ("exp(3*log(x) + y)", x**3 * exp(y)),
    ("exp(log(x)/3)", x ** Rational(1, 3)),
    ("exp(2**100*x*log(2))", exp(2**100 * x * log(2))),
    ("sigmoid(log(2*log(3)))", 1 / (1 + exp(-log(2 * log(3))))),
    ("log(exp(x))", x),
    ("sigmoid(0)", Rational(1, 2)),
    ("exp(-1/2)", exp(Rational(-1, 2))),
    ("  x\t+\ny  ", x + y),
    ("eta*theta", eta * theta),
    ("a_b + A1", symbol("a_b") + symbol("A1")),
    ("e + lam + alpha", symbol("e") + symbol("lam") + symbol("alpha")),
    ("x" * 32, symbol("x" * 32)),
    ("2**100", Integer(2) ** 100),
    ("(2*x)**100", 2**100 * x**100),
    ("exp(x)**100", exp(100 * x)),
    ("(x**100)**100", x**10000),
    ("tanh(sqrt(x**2+1))", tanh(sqrt(x**2 + 1))),
    ("tanh(sqrt(x))", tanh(sqrt(x))),
    ("tanh(log(x))*x**w1 + 1", tanh(log(x)) * x**w1 + 1),
    ("(tanh(sqrt(x)) + sin(log(y)))**100", (tanh(sqrt(x)) + sin(log(y))) ** 100),
    ("tanh(tanh(tanh(x)))", tanh(tanh(tanh(x)))),
    ("abs(exp(x))", exp(x)),
    ("abs(sqrt(x) - 1)", Abs(sqrt(x) - 1)),
    ("(2-sqrt(x))**100", (2 - sqrt(x)) ** 100),
    ("sin((x+sqrt(y))**3)", sin((x + sqrt(y)) ** 3)),
    ("sqrt(sqrt(x))", x ** Rational(1, 4)),
    ("1/(1/x)", x),
    ("x1+x2+x3", symbol("x1") + symbol("x2") + symbol("x3")),
]


@pytest.mark.parametrize(("text", "expected"), EXACT)
def test_exact_results(text: str, expected: sympy.Expr) -> None:
    assert parse_expression(text, FIELD) == expected


@pytest.mark.parametrize(
    ("text", "expected_type"),
    [("0.1", Rational), ("2", Integer), ("2.0", Integer), ("1e-3", Rational), ("1.5E2", Integer)],
)
def test_decimal_literals_are_exact_rationals(text: str, expected_type: type) -> None:
    value = parse_expression(text, FIELD)
    assert type(value) is expected_type
    assert not value.has(sympy.Float)


def test_decimal_is_not_the_float() -> None:
    # Going through float would give 3602879701896397/36028797018963968.
    assert parse_number("0.1", FIELD) == Rational(1, 10)
    assert parse_number("0.1", FIELD) != Rational(0.1)


def test_result_symbols_are_the_shared_real_symbols() -> None:
    result = parse_expression("w1*x", FIELD)
    assert result.free_symbols == {w1, x}
    for sym in result.free_symbols:
        assert sym is symbol(sym.name)
        assert sym.is_real


def test_symbol_is_cached_and_real() -> None:
    assert symbol("q") is symbol("q")
    assert symbol("q") == sympy.Symbol("q", real=True)
    assert symbol("q") != sympy.Symbol("q")


def test_names_whitelist_accepts_listed_names() -> None:
    assert parse_expression("eta*x", FIELD, names=["eta", "x"]) == eta * x
    assert parse_expression("exp(x)", FIELD, names={"x"}) == exp(x)


def test_long_sum_is_not_deep() -> None:
    # A sum of many terms is a flat chain, not 500 levels of nesting.
    text = "+".join(f"x{i}" for i in range(400))
    assert parse_expression(text, FIELD) == sympy.Add(*(symbol(f"x{i}") for i in range(400)))
    product = "*".join(f"x{i}" for i in range(300))
    assert parse_expression(product, FIELD) == sympy.Mul(*(symbol(f"x{i}") for i in range(300)))


def test_long_product_same_value_as_python() -> None:
    # Past the fold limit products are built in one step: same value, maybe another arrangement.
    text = "2*(x+1)*" + "*".join(["y"] * 40)
    result = parse_expression(text, FIELD)
    assert sympy.expand(result - 2 * (x + 1) * y**40) == 0


def test_depth_at_the_limit_is_accepted() -> None:
    assert parse_expression("(" * 38 + "x" + ")" * 38, FIELD) == x
    assert parse_expression("-" * 39 + "x", FIELD) == -x


# --------------------------------------------------------------------------------------------------
# Student answers

STUDENT = [
    ("2x", 2 * x),
    ("141x+2.2", 141 * x + Rational(11, 5)),
    ("2(x+1)", 2 * (x + 1)),
    ("(x+1)(x-1)", (x + 1) * (x - 1)),
    ("x y", x * y),
    ("2 eta", 2 * eta),
    ("2x^2", 2 * x**2),
    ("12/5x", Rational(12, 5) * x),
    ("x(y+1)", x * (y + 1)),
    ("2exp(x)", 2 * exp(x)),
    ("2 sqrt(x)", 2 * sqrt(x)),
    ("(x+1)2", (x + 1) * 2),
    ("\\frac{12}{5}x + \\frac{11}{5}", 12 * x / 5 + Rational(11, 5)),
    ("\\frac12", Rational(1, 2)),
    ("\\frac{1}2", Rational(1, 2)),
    ("\\dfrac{x}{2}", x / 2),
    ("\\tfrac{1}{x+1}", 1 / (x + 1)),
    ("\\frac{\\frac{1}{2}}{3}", Rational(1, 6)),
    ("\\sqrt{x}", sqrt(x)),
    ("\\sqrt{4}", Integer(2)),
    ("\\sqrt[3]{8}", Integer(2)),
    ("2\\cdot 3", Integer(6)),
    ("2 \\times x", 2 * x),
    ("\\left(x+1\\right)^2", (x + 1) ** 2),
    ("\\left[x+1\\right]", x + 1),
    ("{x+1}^{2}", (x + 1) ** 2),
    ("x^{2}", x**2),
    ("e^{-x}", symbol("e") ** -x),
    ("\\exp(2s)", exp(2 * s)),
    ("\\ln(x)", log(x)),
    ("\\log{x}", log(x)),
    ("\\sin(x)\\cos(x)", sin(x) * cos(x)),
    ("\\tanh(x)", tanh(x)),
    ("\\eta", eta),
    ("\\theta x", theta * x),
    ("2\\eta", 2 * eta),
    ("x\\eta", x * eta),
    ("w_3", w3),
    ("w_{3}", w3),
    ("w_{10}x", symbol("w10") * x),
    ("x\\,+\\;1\\!", x + 1),
    ("x \\quad + 1", x + 1),
    ("$2x$", 2 * x),
    ("\\(2x\\)", 2 * x),
    ("\\[2x\\]", 2 * x),
    ("\u22120.2", Rational(-1, 5)),  # MINUS SIGN
    ("\u20130.2", Rational(-1, 5)),  # EN DASH
    ("\u20120.2", Rational(-1, 5)),  # FIGURE DASH
    ("2\u00d7x", 2 * x),  # MULTIPLICATION SIGN
    ("2\u00b7x", 2 * x),  # MIDDLE DOT
    ("2\u22c5x", 2 * x),  # DOT OPERATOR
    ("6\u00f73", Integer(2)),  # DIVISION SIGN
    ("2\u00a0x", 2 * x),  # NO-BREAK SPACE
    ("2\u2009x", 2 * x),  # THIN SPACE
    ("x\u00b2", x**2),
    ("x\u00b3", x**3),
    ("x\u00b2\u00b3", x**23),
    ("x\u207b\u00b9", 1 / x),
    ("2x\u00b2 \u2212 x", 2 * x**2 - x),
    ("x", x),
    ("0.1", Rational(1, 10)),
]


@pytest.mark.parametrize(("text", "expected"), STUDENT)
def test_student_answers(text: str, expected: sympy.Expr) -> None:
    assert parse_expression(text, FIELD, student=True) == expected


def test_student_underscore_name_kept_when_listed() -> None:
    assert parse_expression("w_3", FIELD, student=True, names=["w_3"]) == symbol("w_3")
    assert parse_expression("w_3", FIELD, student=True, names=["w3"]) == w3


def test_student_case_slip_of_function_stays_a_call() -> None:
    refuse("Exp(x)", "unknown function 'Exp'; did you mean exp?", student=True)


def test_strict_mode_keeps_underscores() -> None:
    assert parse_expression("w_3", FIELD) == symbol("w_3")


# --------------------------------------------------------------------------------------------------
# Refusals

REFUSALS = [
    # empty and length
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("x" * 5000, "expression is 5000 characters long (limit 2000)"),
    ("'" * 2001, "expression is 2001 characters long (limit 2000)"),
    ("\u0445" * 3000, "expression is 3000 characters long (limit 2000)"),
    # characters
    ("x\u0445", "unexpected character '\u0445' (CYRILLIC SMALL LETTER HA) at column 2"),
    ("2*\u0445", "unexpected character '\u0445' (CYRILLIC SMALL LETTER HA) at column 3"),
    ("\u03b7*x", "unexpected character '\u03b7' (GREEK SMALL LETTER ETA) at column 1"),
    ("\u03b7*x", "write Greek letters by name, e.g. eta"),
    ("\uff58", "(FULLWIDTH LATIN SMALL LETTER X) at column 1"),
    ("x\u00b2", "(SUPERSCRIPT TWO) at column 2; use ^, e.g. x^2"),
    ("\u22121", "(MINUS SIGN) at column 1; use '-'"),
    ("1\u00a0+ 1", "(NO-BREAK SPACE) at column 2; use an ordinary space"),
    ("x\x00", "unexpected character '\\x00' (U+0000) at column 2"),
    ("x;y", "unexpected character ';' at column 2"),
    ("x % 2", "unexpected character '%' at column 3"),
    ("x @ y", "unexpected character '@' at column 3"),
    ("x == 1", "unexpected character '=' at column 3; write an expression, not an equation"),
    ("x < 1", "unexpected character '<' at column 3"),
    ("'x'", "unexpected character \"'\" at column 1; text in quotes is not allowed"),
    ('"x"', "unexpected character '\"' at column 1"),
    ("b'x'", "unexpected character \"'\" at column 2"),
    ("f'{x}'", "unexpected character \"'\" at column 2"),
    ("x.real", "unexpected character '.' at column 2"),
    ("x.__class__", "unexpected character '.' at column 2"),
    ("().__class__.__bases__", "unexpected character '.' at column 3"),
    ("x[0]", "unexpected character '[' at column 2; use ( ) for grouping"),
    ("{x}", "unexpected character '{' at column 1"),
    ("\\frac{1}{2}", "unexpected character '\\\\' at column 1; LaTeX is not accepted here"),
    ("lambda: 0", "'lambda' is a Python keyword and cannot be used as a name"),
    ("x if y else z", "'if' is a Python keyword and cannot be used as a name"),
    ("None", "'None' is a Python keyword and cannot be used as a name"),
    ("True + 1", "'True' is a Python keyword and cannot be used as a name"),
    ("not x", "'not' is a Python keyword and cannot be used as a name"),
    ("__import__('os')", "'__import__' at column 1 cannot be used as a name"),
    ("_x", "names must start with a letter"),
    ("x + __builtins__", "'__builtins__' at column 5 cannot be used as a name"),
    ("f(*x)", "expected a number or a name before '*'"),
    ("f(x=1)", "unexpected character '=' at column 4"),
    ("x" * 33, "is too long (limit 32 characters)"),
    # numbers
    ("1j", "did you mean 1*j?"),
    ("0x10", "hexadecimal, binary and octal numbers are not supported"),
    ("0b101", "hexadecimal, binary and octal numbers are not supported"),
    ("1_000", "write numbers without '_'"),
    ("1.2.3", "'1.2.' is not a number"),
    ("1..2", "'1..' is not a number"),
    ("1" * 41, "is too long (limit 40 characters)"),
    ("1e999999", "the exponent in '1e999999' at column 1 is out of range (limit -50 to 50)"),
    ("1e-51", "the exponent in '1e-51' at column 1 is out of range (limit -50 to 50)"),
    # syntax
    ("w1 x + w2", "could not read 'w1 x + w2' near column 4; did you mean w1*x?"),
    ("2x", "could not read '2x' near column 2; did you mean 2*x?"),
    ("2 3", "did you mean 2*3?"),
    ("2(x+1)", "did you mean 2*(...)?"),
    ("(x+1)(x-1)", "near column 6; did you mean (...)*(...)?"),
    ("(x+1)y", "did you mean (...)*y?"),
    ("x y", "did you mean x*y?"),
    ("x +", "could not read 'x +' near column 3; something is missing after '+'"),
    ("x **", "something is missing after '**'"),
    ("*x", "could not read '*x' near column 1; expected a number or a name before '*'"),
    ("x * / y", "expected a number or a name before '/'"),
    ("x ** * y", "expected a number or a name before '*'"),
    ("x // 2", "'//' (integer division) is not supported; use '/'"),
    ("x ^^ 2", "expected a number or a name before '^'"),
    ("x ^", "something is missing after '^'"),
    ("()", "empty parentheses"),
    ("exp()", "exp() needs one argument, e.g. exp(x)"),
    ("1,5", "write decimals with '.', e.g. 1.5"),
    ("x, y", "',' only separates function arguments"),
    ("(x, y)", "',' only separates function arguments"),
    ("(x+1", "missing ')' to match the '(' at column 1"),
    ("((x)", "missing ')' to match the '(' at column 1"),
    ("x+1)", "unexpected ')' at column 4"),
    (")", "unexpected ')' at column 1"),
    ("(", "something is missing after '('"),
    ("exp(x)(y)", "did you mean (...)*(...)?"),
    # functions and names
    ("log(x, 2)", "log takes one argument"),
    ("exp(x, y, z)", "exp takes one argument"),
    ("exp", "'exp' is a function; write exp(...)"),
    ("2*sigmoid", "'sigmoid' is a function; write sigmoid(...)"),
    ("ln + 1", "'ln' is a function; write ln(...)"),
    ("open('x')", "unexpected character \"'\" at column 6"),
    ("open(x)", "unknown function 'open'; allowed: abs, cos, exp, log, sigmoid, sin, sqrt, tanh"),
    ("eval(x)", "unknown function 'eval'"),
    ("getattr(x)", "unknown function 'getattr'"),
    ("Exp(x)", "unknown function 'Exp'; did you mean exp?"),
    ("SQRT(x)", "unknown function 'SQRT'; did you mean sqrt?"),
    ("tan(x)", "unknown function 'tan'; allowed:"),
    ("x(y)", "unknown function 'x'; allowed:"),
    # limits on powers and sizes
    ("9**9**9", "exponent 387420489 is too large (limit 100)"),
    ("2**2**2**2**2", "exponent 65536 is too large (limit 100)"),
    ("10**10**10", "exponent 10000000000 is too large (limit 100)"),
    ("x**101", "exponent 101 is too large (limit 100)"),
    ("x**-101", "exponent -101 is too large (limit 100)"),
    ("x^(1/101)", "exponent 1/101 has too large a denominator (limit 100)"),
    ("x**(50*3)", "exponent 150 is too large (limit 100)"),
    ("(10**40)**100", "power too large: the result would have about 13300 bits (limit 4096)"),
    ("(10**40*x)**100", "power too large"),
    ("(10**40)**100 / (10**40)**100", "power too large"),
    ("(2**64)**65", "power too large: the result would have about 4225 bits (limit 4096)"),
    ("(2**100)**100", "power too large"),
    ("((2**64)**64)**64", "power too large"),
    ("2**(2**(2**(2**(2**(2)))))", "too large"),
    ("sqrt((10**40)**2)", "root too costly to take exactly: it involves numbers of about 266 bits"),
    ("(1/12345678901234567890)**(1/99)", "root too costly to take exactly"),
    ("12345678901234567890**(98/99)", "root too costly to take exactly"),
    ("(2**100*2**100*2**100*2**100*2**100*2**100*2**100*2**100*2**100*2**100) ** (1/2)",
     "root too costly to take exactly"),
    ("(2**100)**40 * (2**100)**40", "a number in the result would have 8001 bits (limit 4096)"),
    ("2**2**2**(1/2)", "powers nested too deeply (limit 2 non-integer powers in a tower)"),
    ("2**-2**-2**-2**-2", "powers nested too deeply"),
    ("exp(exp(exp(10)))", "the argument of exp is too large (limit 10000 in absolute value)"),
    ("exp(10001)", "the argument of exp is too large"),
    ("sigmoid(-20000)", "the argument of sigmoid is too large"),
    ("(exp(100)**100)**100", "the argument of exp is too large"),
    ("exp(9000)*exp(9000)", "the argument of exp is too large"),
    ("sin((exp(9000)+1)*(exp(9000)+2))", "the argument of sin is too large"),
    ("abs((exp(9000)+1)**3 - 1)", "the argument of abs is too large"),
    ("2**sqrt(2)**100", "exponent 1125899906842624 is too large (limit 100)"),
    ("sigmoid(log(2)*2**100 - (1e50)**x)", "exponent (a number of about 31 digits) is too large"),
    ("exp(x + 2**100*log(2))", "exponent (a number of about 31 digits) is too large"),
    ("exp(x + 200*log(2))", "exponent 200 is too large (limit 100)"),
    ("exp(x + 100*log(10**50))", "power too large"),
    ("sigmoid(ln(log(2)*2**100))", "exponent (a number of about 31 digits) is too large"),
    ("exp(x*log(3*log(2)*2**100))", "exponent (a number of about 31 digits) is too large"),
    ("exp(1)**(-tanh(2**100*log(2)))", "exponent (a number of about 31 digits) is too large"),
    ("2**(sqrt(2)*20000)", "exponent is too large (limit 10000 in absolute value)"),
    ("x**(10001*sqrt(2))", "exponent is too large"),
    ("((x**100)**100)**2", "exponent 20000 is too large after combining powers (limit 10000)"),
    ("sqrt(" * 14 + "x" + ")" * 14, "exponent 1/16384 is too large after combining powers"),
    ("*".join(["x**100"] * 101), "exponent 10100 is too large after combining powers"),
    ("-" * 41 + "x", "expression is nested too deeply (limit 40 levels)"),
    ("(" * 41 + "x" + ")" * 41, "expression is nested too deeply (limit 40 levels)"),
    ("(" * 1000, "expression is nested too deeply"),
    ("-" * 1999 + "1", "expression is nested too deeply"),
    ("x" + "**x" * 41, "expression is nested too deeply"),
    ("exp(" * 41 + "x" + ")" * 41, "expression is nested too deeply"),
    ("x*(1+" * 25 + "x" + ")" * 25, "expression is nested too deeply"),
    # not finite real numbers
    ("1/0", "division by zero"),
    ("x/0", "division by zero"),
    ("1/(x-x)", "division by zero"),
    ("1/(1/0)", "division by zero"),
    ("0**-1", "division by zero"),
    ("(x-x)**-2", "division by zero"),
    ("0/0", "division by zero"),
    ("log(0)", "log(0) is undefined: not a real number"),
    ("log(x-x)", "not a real number"),
    ("log(-1)", "log of a negative number is not a real number"),
    ("log(1-exp(1))", "log of a negative number is not a real number"),
    ("sqrt(-1)", "square root of a negative number is not a real number"),
    ("sqrt(-2)*x", "not a real number"),
    ("sqrt(1-sqrt(2))", "not a real number"),
    ("sqrt(1-exp(1))", "not a real number"),
    ("(-8)**(1/3)", "a negative number to a non-integer power is not a real number"),
    ("(-1)**x", "a negative number to a non-integer power is not a real number"),
    ("(-2)**0.5", "not a real number"),
    # SymPy splits arguments it cannot show to be real into real and imaginary parts: slow
    ("tanh(tanh(sqrt(w1)))", "the argument of tanh may not be real and contains tanh(sqrt(w1)),"),
    ("tanh(" * 12 + "sqrt(w1)" + ")" * 12, "contains tanh(sqrt(w1)), itself of something that"),
    ("sqrt(sigmoid(sqrt(w1)))", "the base of a non-integer power may not be real and contains"),
    ("exp(tanh(log(x)))", "the argument of exp may not be real and contains tanh(log(x))"),
    ("abs(exp(sqrt(x)))", "the argument of abs may not be real and contains exp(sqrt(x))"),
    ("abs(exp((2-sqrt(w1))**100))", "the argument of exp may not be real and is too complex"),
    ("abs((x+sqrt(y))**20)", "the argument of abs may not be real and is too complex"),
    ("sqrt(sigmoid((2-sqrt(w1))**100))", "the argument of sigmoid may not be real"),
    ("((2-sqrt(w1))**100)**(1/3)", "the base of a non-integer power may not be real"),
    ("log((x+sqrt(y))**4*(x-sqrt(y))**4)", "(more than 16 terms when expanded)"),
    # names SymPy or Python would read back as something else (the JSON contract reads results back)
    ("E*x", "'E' is a reserved name"),
    ("x + I", "'I' is a reserved name"),
    ("pi*x", "'pi' is a reserved name"),
    ("beta*x", "'beta' is a reserved name"),
    ("oo", "'oo' is a reserved name"),
    ("print + x", "'print' is a reserved name"),
    ("open(x)", "unknown function 'open'"),
]


@pytest.mark.parametrize(("text", "expected"), REFUSALS)
def test_refusals(text: str, expected: str) -> None:
    refuse(text, expected)


def test_refusals_are_fast() -> None:
    for text, _ in REFUSALS:
        start = time.perf_counter()
        with pytest.raises(ParseError):
            parse_expression(text, FIELD)
        assert time.perf_counter() - start < 1.0, text


def test_length_is_checked_before_anything_else() -> None:
    # Garbage far past the limit must not reach the tokenizer (which would name the first bad
    # character), nor cost time proportional to its contents.
    start = time.perf_counter()
    refuse("\x00" * 10**6, "expression is 1000000 characters long (limit 2000)")
    refuse("1" * 10**6, "expression is 1000000 characters long (limit 2000)")
    assert time.perf_counter() - start < 0.5


def test_limits_can_be_tightened() -> None:
    tight = Limits(max_length=5, max_depth=3, max_exponent=2, max_literal_chars=3)
    assert parse_expression("x+y+z", FIELD, limits=tight) == x + y + z
    refuse("x+y+zz", "expression is 6 characters long (limit 5)", limits=tight)
    refuse("x**3", "exponent 3 is too large (limit 2)", limits=tight)
    refuse("1234", "number '1234' at column 1 is too long (limit 3 characters)", limits=tight)
    shallow = Limits(max_depth=3)
    refuse("((((x))))", "nested too deeply (limit 3 levels)", limits=shallow)
    refuse("x*(1+x*y)", "nested too deeply (limit 3 levels)", limits=shallow)
    assert parse_expression("(((x)))", FIELD, limits=shallow) == x


def test_refusals_mention_no_python_internals() -> None:
    for text in ["x y", "1 +", "(", "x)", "lambda", "x if y else z", "yield x", "await x"]:
        error = refuse(text, "")
        assert "invalid syntax" not in str(error) and "line 1" not in str(error)


STUDENT_REFUSALS = [
    ("\\foo", "unknown LaTeX command '\\foo' at column 1"),
    ("2\\alpha2 + \\bar{x}", "unknown LaTeX command '\\bar' at column 12"),
    ("\\frac", "\\frac needs its arguments in braces"),
    ("\\frac{1}", "\\frac needs its arguments in braces"),
    ("\\frac{1}{0}", "division by zero"),
    ("\\sqrt{-4}", "not a real number"),
    ("\\sqrt[3{8}", "missing ']'"),
    ("{x+1", "missing '}' to match the '{' at column 1"),
    ("\\frac{x{1}{2}", "missing '}' for the '{' at column 6"),
    ("x+1}", "unexpected '}' at column 4"),
    ("\\left|x\\right|", "\\left at column 1 must be followed by a bracket"),
    ("\\", "a lone '\\' at column 1"),
    ("x\\\\y", "unknown LaTeX command '\\\\' at column 2"),
    ("x_{i+1}", "subscripts must be letters or digits"),
    ("2\u0445", "unexpected character '\u0445' (CYRILLIC SMALL LETTER HA) at column 2"),
    ("2\u03b7", "unexpected character '\u03b7' (GREEK SMALL LETTER ETA) at column 2"),
    ("\uff12x", "(FULLWIDTH DIGIT TWO) at column 1"),
    ("\\frac{1}{2}\u0445", "(CYRILLIC SMALL LETTER HA) at column 12"),
    ("1 000", "two numbers in a row (1 000)"),
    ("x++", "something is missing after '+'"),
    ("sin x", "'sin' is a function; write sin(...)"),
    ("\\sin x", "'sin' is a function; write sin(...)"),
    ("\\lambda", "'lambda' is a Python keyword and cannot be used as a name"),
    ("2,5", "write decimals with '.', e.g. 1.5"),
    ("x//2", "'//' (integer division) is not supported"),
    ("$" + "x" * 2000 + "$", "expression is 2002 characters long (limit 2000)"),
    ("\\frac{" * 41 + "1" + "}{2}" * 41, "nested too deeply"),
    ("{" * 41 + "x" + "}" * 41, "nested too deeply"),
]


@pytest.mark.parametrize(("text", "expected"), STUDENT_REFUSALS)
def test_student_refusals(text: str, expected: str) -> None:
    refuse(text, expected, student=True)


NAME_REFUSALS = [
    ("z", ["eta", "x"], "unknown name 'z'; use one of: eta, x"),
    ("w1x", ["w1", "x"], "unknown name 'w1x'; did you mean w1*x? (use one of: w1, x)"),
    ("etax", ["eta", "x"], "did you mean eta*x?"),
    ("w1w2x", ["w1", "w2", "x"], "did you mean w1*w2*x?"),
    ("X", ["x"], "unknown name 'X'; did you mean x?"),
    ("Eta", ["eta"], "did you mean eta?"),
    ("sinx", ["x"], "did you mean sin(x)?"),
    ("e", ["x"], "for Euler's number write exp(1)"),
    ("q", [], "unknown name 'q'; no names are allowed here"),
    ("x(y+1)", ["x", "y"], "unknown function 'x'; for a product write x*(...)"),
]


@pytest.mark.parametrize(("text", "names", "expected"), NAME_REFUSALS)
def test_unknown_names(text: str, names: list[str], expected: str) -> None:
    refuse(text, expected, names=names)
    if text != "x(y+1)":  # a product in student answers
        refuse(text, expected, names=names, student=True)


def test_student_split_hint() -> None:
    refuse("2w1x", "unknown name 'w1x'; did you mean w1*x?", names=["w1", "x"], student=True)


def test_numbers_only() -> None:
    refuse("a", "expected a number, found the name 'a'", numbers_only=True)
    refuse("2*x + 1", "expected a number, found the name 'x'", numbers_only=True)
    assert parse_expression("sqrt(2)/2", FIELD, numbers_only=True) == sqrt(2) / 2


def test_parse_error_is_a_symreparam_error() -> None:
    error = refuse("1/0", "division by zero")
    assert isinstance(error, SymreparamError)
    assert str(error) == f"{FIELD}: division by zero"


def test_non_text_is_refused() -> None:
    with pytest.raises(ParseError, match="expected text, got float"):
        parse_expression(0.1, FIELD)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# parse_number, split_assignment, parse_assignments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5", Rational(1, 2)),
        ("-0.2", Rational(-1, 5)),
        ("1/3", Rational(1, 3)),
        ("2^-4", Rational(1, 16)),
        ("1e-3", Rational(1, 1000)),
        ("sqrt(2)/2", sqrt(2) / 2),
        ("exp(-1)", exp(-1)),
        ("log(2)", log(2)),
        ("sigmoid(0)", Rational(1, 2)),
        (" 7 ", Integer(7)),
    ],
)
def test_parse_number(text: str, expected: sympy.Expr) -> None:
    value = parse_number(text, "--lr")
    assert value == expected
    assert value.is_real and not value.free_symbols


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", "--lr: expected a number, found the name 'x'"),
        ("1/0", "--lr: division by zero"),
        ("sqrt(-1)", "--lr: square root of a negative number is not a real number"),
        ("log(0)", "--lr: log(0) is undefined"),
        ("9**9**9", "--lr: exponent 387420489 is too large (limit 100)"),
        ("", "--lr: empty expression"),
        ("0,1", "--lr: could not read '0,1' near column 2"),
    ],
)
def test_parse_number_refusals(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=re.escape(expected)):
        parse_number(text, "--lr")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("w1 = 2.4", ("w1", "2.4")),
        ("w1=0.5", ("w1", "0.5")),
        ("  eta=  1/10 ", ("eta", "1/10")),
        ("x_1 = -3", ("x_1", "-3")),
    ],
)
def test_split_assignment(text: str, expected: tuple[str, str]) -> None:
    assert split_assignment(text, "--init") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("w1 2.4", "expected NAME=VALUE, e.g. w1=0.5"),
        ("=2", "missing the name before '='; expected NAME=VALUE, e.g. w1=0.5"),
        ("w1=", "missing the value after 'w1='; expected NAME=VALUE, e.g. w1=0.5"),
        ("w1 =  ", "missing the value after 'w1='"),
        ("w1==2", "with a single '='"),
        ("1w=2", "'1w' is not a valid name"),
        ("_w=2", "'_w' is not a valid name"),
        ("w 1=2", "'w 1' is not a valid name"),
        ("__class__=2", "is not a valid name"),
        ("lambda=2", "'lambda' is a Python keyword and cannot be used as a name"),
        ("exp=2", "'exp' is a function and cannot be used as a name"),
        ("\u0445=2", "is not a valid name"),
        ("x" * 33 + "=1", "is too long (limit 32 characters)"),
        ("", "expected NAME=VALUE"),
    ],
)
def test_split_assignment_refusals(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=re.escape(expected)) as info:
        split_assignment(text, "--init")
    assert str(info.value).startswith("--init: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x=7,y=10", {"x": Integer(7), "y": Integer(10)}),
        ("x1=1, x2=2, y=3", {"x1": Integer(1), "x2": Integer(2), "y": Integer(3)}),
        ("w=0.1", {"w": Rational(1, 10)}),
        (" a = -1/2 ,b=2^-1", {"a": Rational(-1, 2), "b": Rational(1, 2)}),
        ("s=sqrt(2)", {"s": sqrt(2)}),
    ],
)
def test_parse_assignments(text: str, expected: dict[str, sympy.Expr]) -> None:
    result = parse_assignments(text, "--point")
    assert result == expected
    assert list(result) == list(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x=7,x=8", "--point: x given twice"),
        ("", "--point: empty list; expected NAME=VALUE pairs, e.g. x=7, y=10"),
        ("  ", "--point: empty list"),
        ("x=7,,y=1", "--point: entry 2 of the list is empty"),
        ("x=7,", "--point: entry 2 of the list is empty"),
        ("x=y", "--point: x: expected a number, found the name 'y'"),
        ("x=1/0", "--point: x: division by zero"),
        ("x=7;y", "--point: x: unexpected character ';' at column 2"),
        ("x=7;y=1", "--point: expected NAME=VALUE, e.g. w1=0.5, with a single '='"),
        ("x 7", "--point: expected NAME=VALUE, e.g. w1=0.5"),
        ("x=" + "1" * 3000, "characters long (limit 2000)"),
    ],
)
def test_parse_assignments_refusals(text: str, expected: str) -> None:
    with pytest.raises(ParseError, match=re.escape(expected)):
        parse_assignments(text, "--point")


# --------------------------------------------------------------------------------------------------
# The public surface and the module's own rules


def test_functions_whitelist() -> None:
    assert set(FUNCTIONS) == {"exp", "log", "ln", "sqrt", "sin", "cos", "tanh", "sigmoid", "abs"}
    assert FUNCTIONS["ln"] is FUNCTIONS["log"]
    assert FUNCTIONS["sigmoid"](x) == sigmoid(x)
    with pytest.raises(TypeError):
        FUNCTIONS["eval"] = eval  # type: ignore[index]


def test_limits_are_frozen_with_documented_defaults() -> None:
    assert DEFAULT_LIMITS == Limits()
    assert (
        DEFAULT_LIMITS.max_length,
        DEFAULT_LIMITS.max_depth,
        DEFAULT_LIMITS.max_exponent,
        DEFAULT_LIMITS.max_literal_chars,
        DEFAULT_LIMITS.max_scientific_exponent,
        DEFAULT_LIMITS.max_number_bits,
        DEFAULT_LIMITS.max_name_length,
    ) == (2000, 40, 100, 40, 50, 4096, 32)
    # Bounds beyond the brief, each guarding a measured SymPy slowdown (see Limits).
    assert (
        DEFAULT_LIMITS.max_root_bits,
        DEFAULT_LIMITS.max_exp_argument,
        DEFAULT_LIMITS.max_complex_terms,
        DEFAULT_LIMITS.max_complex_number_bits,
    ) == (256, 10_000, 16, 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_length = 10**9  # type: ignore[misc]


def test_keyword_list_matches_python() -> None:
    assert parse_module._KEYWORDS == frozenset(keyword.kwlist)


def test_public_functions_have_docstrings() -> None:
    for function in (symbol, parse_expression, parse_number, split_assignment, parse_assignments):
        assert function.__doc__


def test_module_never_evaluates_text() -> None:
    tree = ast.parse(PARSE_SOURCE)
    forbidden_names = {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__"}
    forbidden_methods = {"eval", "exec", "sympify", "parse_expr", "S", "__import__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in forbidden_names, f"line {node.lineno}: call of {func.id}"
            if isinstance(func, ast.Attribute):
                assert func.attr not in forbidden_methods, f"line {node.lineno}: {func.attr}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
            assert not any("parsing" in module for module in modules)


def test_module_import_is_cheap() -> None:
    code = (
        "import sys, sympy\n"
        "before = set(sys.modules)\n"
        "import symreparam.parse\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
        env={"PYTHONPATH": str(root), "PATH": ""},
    )
    new_modules = set(result.stdout.split())
    allowed = {
        "symreparam", "symreparam.errors", "symreparam.parse",
        "ast", "re", "unicodedata", "functools", "dataclasses", "types", "collections.abc",
    }  # fmt: skip
    assert new_modules <= allowed


# --------------------------------------------------------------------------------------------------
# Property (a): random expression trees round-trip through text

# Refusals here come only from the value (non-real, division by zero, exp of a huge constant) or
# from nesting functions of what may not be real; the other limits are lifted.
GENEROUS = Limits(
    max_depth=200,
    max_number_bits=10**6,
    max_root_bits=10**6,
    max_exp_argument=10**100,
    max_complex_terms=10**6,
    max_power_tower=100,
)
SYMBOLS = ["x", "y", "w1", "eta"]
NOT_FINITE_REAL = (sympy.I, sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)


def _decimal_leaf(whole: int, fraction: int, places: int) -> tuple[str, sympy.Expr]:
    digits = f"{fraction % 10**places:0{places}d}"
    return f"{whole}.{digits}", Rational(int(f"{whole}{digits}"), 10**places)


def _scientific_leaf(mantissa: int, power: int, letter: str) -> tuple[str, sympy.Expr]:
    return f"{mantissa}{letter}{power}", Integer(mantissa) * Rational(10) ** power


LEAVES = st.one_of(
    st.sampled_from(SYMBOLS).map(lambda name: (name, symbol(name))),
    st.integers(0, 20).map(lambda n: (str(n), Integer(n))),
    st.builds(_decimal_leaf, st.integers(0, 99), st.integers(0, 999), st.integers(1, 3)),
    st.builds(_scientific_leaf, st.integers(1, 99), st.integers(-3, 3), st.sampled_from("eE")),
).map(lambda leaf: (*leaf, False))

FUNCTION_BUILDERS = {
    "exp": exp, "log": log, "ln": log, "sqrt": sqrt, "sin": sin, "cos": cos, "tanh": tanh,
    "sigmoid": sigmoid, "abs": Abs,
}  # fmt: skip


# A tree is (text, value, refused): ``refused`` is set once any subexpression is not a finite real
# number, because a later step can hide it (zoo**0 and nan**0 are 1 in SymPy).
Tree = tuple[str, sympy.Expr, bool]


def _node(text: str, value: sympy.Expr, *children: Tree) -> Tree:
    refused = any(child[2] for child in children)
    return text, value, refused or _not_finite_real(value) or _huge_exp(value)


def _huge_exp(value: sympy.Expr) -> bool:
    """Whether ``value`` holds exp(c) for a constant c beyond GENEROUS.max_exp_argument."""
    return any(
        isinstance(node, sympy.exp)
        and node.args[0].is_number
        and abs(node.args[0].evalf(5)) > GENEROUS.max_exp_argument
        for node in sympy.preorder_traversal(value)
    )


def _binary(args: tuple) -> Tree:
    left, op, right = args
    value = {"+": left[1] + right[1], "-": left[1] - right[1], "*": left[1] * right[1]}.get(op)
    if op == "/":
        value = left[1] / right[1]
    return _node(f"({left[0]}){op}({right[0]})", value, left, right)


def _power_node(args: tuple) -> Tree:
    base, exponent, spelling = args
    return _node(f"({base[0]}){spelling}{exponent}", base[1] ** exponent, base)


def _function_node(args: tuple) -> Tree:
    name, arg = args
    text, value, refused = _node(f"{name}({arg[0]})", FUNCTION_BUILDERS[name](arg[1]), arg)
    return text, value, refused or _nested_complex(arg[1])


def _nested_complex(arg: sympy.Expr) -> bool:
    """The parser's rule: a function of what may not be real may not contain another one."""
    if arg.is_extended_real:
        return False
    return any(
        (isinstance(node, sympy.Function) or (node.is_Pow and not node.exp.is_Integer))
        and not all(inner.is_extended_real for inner in node.args)
        for node in sympy.preorder_traversal(arg)
    )


def _negation(child: Tree) -> Tree:
    return _node(f"-({child[0]})", -child[1], child)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.tuples(children, st.sampled_from("+-*/"), children).map(_binary),
        st.tuples(children, st.integers(-3, 3), st.sampled_from(["**", "^"])).map(_power_node),
        st.tuples(st.sampled_from(sorted(FUNCTION_BUILDERS)), children).map(_function_node),
        children.map(_negation),
    )


TREES = st.recursive(LEAVES, _extend, max_leaves=8)


def _not_finite_real(value: sympy.Expr) -> bool:
    """Whether ``value`` is not a finite real number (for the values these trees produce)."""
    if value.has(*NOT_FINITE_REAL):
        return True
    return any(
        node.is_Pow
        and not node.exp.is_integer
        and node.base.is_number
        and node.base.is_extended_negative
        for node in sympy.preorder_traversal(value)
    )


def _check_round_trip(text: str, expected: sympy.Expr, refused: bool) -> None:
    for student in (False, True):
        if refused:
            with pytest.raises(ParseError):
                parse_expression(text, FIELD, student=student, limits=GENEROUS)
        else:
            assert parse_expression(text, FIELD, student=student, limits=GENEROUS) == expected


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(TREES)
def test_random_trees_round_trip(tree: Tree) -> None:
    _check_round_trip(*tree)


@settings(max_examples=300, deadline=None, database=None)
@given(TREES, st.data())
def test_random_trees_with_spacing_round_trip(tree: Tree, data: st.DataObject) -> None:
    text, expected, refused = tree
    # Spaces between tokens never change the value (they cannot split a number or name).
    pieces = re.findall(r"[0-9.]+(?:[eE]-?[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*|\*\*|.", text)
    spaced = "".join(piece + data.draw(st.sampled_from(["", " ", "  ", "\t"])) for piece in pieces)
    _check_round_trip(spaced, expected, refused)


# --------------------------------------------------------------------------------------------------
# Property (b): hostile input never escapes as anything but ParseError, and is refused quickly

HOSTILE_BLOCKS = [
    "__import__('os')", "__import__('os').system('true')", "().__class__.__bases__",
    "().__class__.__bases__[0].__subclasses__()", "lambda: 0", "lambda x: x", "open('x')",
    "exec('1')", "eval('1')", "compile('1','','eval')", "globals()", "x.__class__", "__builtins__",
    "x.__dict__", "getattr(x, '__class__')", "[x for x in ()]", "{}", "{'a': 1}", "f'{x}'",
    "b'x'", "'x'", '"x"', "1j", "0x1F", "0o17", "0b1", "1_000", "1e999999", "1e-999999",
    "9**9**9", "2**2**2**2**2", "(10**40)**100", "10**10**10", "(2**4000)**(1/2)",
    "(10**40*x)**100", "x**(10**40)", "(1/10**40)**-100", "2**-2**-2**-2**-2",
    "(" * 5000, ")" * 50, "-" * 5000 + "1", "1" * 10**6, "(" * 39, "-" * 39, "**2" * 30,
    "x\u0445", "\u0430", "\u03b7", "\uff58", "\u2212", "\u00b2", "\x00", "\x00x", "\ufeff",
    "\u200b", "\\frac{1}{0}", "\\frac", "\\sqrt[", "\\left|", "{", "}", "$", "\\", "_{", "_",
    "exp(exp(exp(10)))", "abs(exp(10000)-1)", "sin(10**1000)", "log(0)", "sqrt(-1)", "1/0",
    "0**-1", "(-8)**(1/3)", "log(x, 2)", "exp()", "sigmoid(-20000)", "exp(9999)**2",
    "(exp(9999)+1)**100", "sin((exp(9999)+1)**100)", "abs(sin(exp(9999)))",
    "2**sqrt(2)**100", "x**(1/101)", "tanh(tanh((2-w1**(1/2))**100))",
    "abs(exp((2-sqrt(w1))**100))", "sqrt(sigmoid((2-w1**(1/2))**100))",
    "tanh(" * 12 + "sqrt(w1)" + ")" * 12, "cos(tanh((2-sqrt(w1))**100))",
    "sqrt(" * 14 + "x" + ")" * 14, "((x**100)**100)**100", "sigmoid(log(2)*2**100 - (1e50)**x)",
    "(1/12345678901234567890)**(1/99)", "exp(x + 2**100*log(2))", "sigmoid(ln(log(2)*2**100))",
    "(log(2))/((10**40)/(sigmoid(ln((log(2)*2**100)))))", "tanh(exp(-(tanh(log(2)*2**100))))", "\\frac12\\frac12", "x^{2^{2^{2}}}", "\u00b2\u00b2\u00b2",
    "1.2.3", "..", "e", "E", "I", "oo", "nan", "zoo", "pi", "None", "True", "import", "yield",
    "await", "async", "x" * 33, "9" * 41, "0." + "0" * 38 + "1",
    "2**-2**-2**-2**-2e2**-2**-2**-2**-22**-2**-2**-2**-2", " + ".join(["2**-3**-5**-2"] * 12),
    "(x+1)**100*(x+2)**100*(x+3)**100", "(exp(9999)+1)**100(exp(9999)+1)**100(exp(9999)+1)**100",
    "(x+1+exp(99))**40", "exp((x+1)**30*(x+2)**30)",
]  # fmt: skip
OPERATORS = ["+", "-", "*", "/", "**", "^", "(", ")", ",", " ", "", "x", "2", ".", "0", "e", "9"]
ALPHABET = "0123456789.eE+-*/^()x ,\\{}_$[]|=<>'\"\u2212\u00b2\u0445\u00d7"
FUNCTION_NAMES = sorted(FUNCTIONS) + ["Exp", "open", "eval", "frac"]

HOSTILE = st.one_of(
    st.text(),
    st.text(alphabet=ALPHABET, max_size=60),
    st.lists(
        st.one_of(
            st.sampled_from(HOSTILE_BLOCKS),
            st.sampled_from(OPERATORS),
            st.sampled_from(FUNCTION_NAMES).map(lambda name: name + "("),
            st.text(max_size=4),
        ),
        max_size=10,
    ).map("".join),
)


def _assert_refused_or_parsed_quickly(text: str) -> None:
    calls = [
        lambda: parse_expression(text, FIELD),
        lambda: parse_expression(text, FIELD, student=True),
        lambda: parse_expression(text, FIELD, names=["x", "eta", "w1"], student=True),
        lambda: parse_number(text, FIELD),
        lambda: parse_assignments(text, FIELD),
        lambda: split_assignment(text, FIELD),
    ]
    for call in calls:
        # CPU time of this process: wall time on a shared 2-core machine measures the neighbours too
        start = time.process_time()
        try:
            result = call()
        except ParseError as error:
            message = str(error)
            assert message.startswith(f"{FIELD}: ") and "\n" not in message
        else:
            if isinstance(result, sympy.Basic):
                assert not result.has(*NOT_FINITE_REAL)
        elapsed = time.process_time() - start
        assert elapsed < 1.0, f"{elapsed:.2f} s for {text[:80]!r}"


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(HOSTILE)
def test_hostile_input_only_raises_parse_error(text: str) -> None:
    _assert_refused_or_parsed_quickly(text)


@pytest.mark.parametrize("text", HOSTILE_BLOCKS)
def test_hostile_blocks(text: str) -> None:
    _assert_refused_or_parsed_quickly(text)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(HOSTILE)
def test_hostile_input_only_raises_parse_error_10000(text: str) -> None:
    _assert_refused_or_parsed_quickly(text)


# Token soups: sequences that mostly pass the tokenizer, so they reach SymPy and its limits.
SOUP_PIECES = (
    ["x", "y", "eta", "w1", "e"]
    + ["0", "1", "2", "3", "9", "10", "0.5", "1e3", "1e-3", "99", "1e50", "12345678901234567890"]
    + ["+", "-", "*", "/", "**", "^", "(", ")", "(", ")", ",", " "]
    + [f"{name}(" for name in sorted(FUNCTIONS)]
    + ["**100", "**(1/2)", "**(1/3)", "**-1", "**(-1/2)", "10**40", "exp(9999)", "(x-x)"]
    + ["\\frac{", "}{", "}", "\\sqrt{", "^{", "\u00b2", "\u2212"]
)


def _token_soup(rng: random.Random) -> str:
    return "".join(rng.choice(SOUP_PIECES) for _ in range(rng.randint(1, 30)))


# Grammatical random expressions with hostile values: these get past the grammar and stress the
# bounds on the SymPy side (sizes of numbers, exponents, exp arguments, signs of constants).
VALUE_LEAVES = [
    "x", "y", "eta", "w1", "0", "1", "2", "0.5", "1e-3", "99", "1e50", "12345678901234567890",
    "10**40", "2**100", "exp(9999)", "exp(-9999)", "(x-x)", "sqrt(2)", "(1-sqrt(2))", "log(2)",
    "log(x)", "sqrt(w1)", "x**eta", "(2-sqrt(w1))", "(log(2)*2**100)",
]  # fmt: skip
EXPONENTS = ["2", "3", "-1", "100", "-100", "101", "(1/2)", "(1/3)", "(99/100)", "(1/101)", "x",
             "sqrt(2)", "(-1/2)", "0.5", "1e2"]  # fmt: skip


def _random_expression(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(VALUE_LEAVES)
    kind = rng.random()
    if kind < 0.35:
        op = rng.choice(["+", "-", "*", "/"])
        return f"({_random_expression(rng, depth - 1)}){op}({_random_expression(rng, depth - 1)})"
    if kind < 0.6:
        exponent = rng.choice(EXPONENTS + [f"({_random_expression(rng, depth - 1)})"])
        return f"({_random_expression(rng, depth - 1)})**{exponent}"
    if kind < 0.9:
        return f"{rng.choice(sorted(FUNCTIONS))}({_random_expression(rng, depth - 1)})"
    return f"-({_random_expression(rng, depth - 1)})"


def test_token_soup_300() -> None:
    rng = random.Random(20240501)
    for _ in range(300):
        _assert_refused_or_parsed_quickly(_token_soup(rng))


def test_random_hostile_expressions_300() -> None:
    rng = random.Random(20240502)
    for _ in range(300):
        _assert_refused_or_parsed_quickly(_random_expression(rng, rng.randint(1, 6)))


@pytest.mark.slow
def test_token_soup_and_hostile_expressions_10000() -> None:
    rng = random.Random(1234567)
    for _ in range(10_000):
        _assert_refused_or_parsed_quickly(_token_soup(rng))
        _assert_refused_or_parsed_quickly(_random_expression(rng, rng.randint(1, 7)))
