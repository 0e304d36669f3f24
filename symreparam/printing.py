"""How exact objects are written in each output format (plain text, LaTeX, Markdown).

LaTeX comes from SymPy's printer with an explicit ``order`` so output is deterministic; nothing
patches printed LaTeX afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

# Only Computer Modern glyphs (no TS1/T1 text-companion fonts), so no bitmap fonts get generated.
_TEX_ESCAPES = {
    "\\": r"$\backslash$", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\~{}", "^": r"\^{}", "<": r"$<$", ">": r"$>$",
}
_TEX_TABLE = str.maketrans(_TEX_ESCAPES)


def tex(expr) -> str:
    """SymPy LaTeX with deterministic term order."""
    return sp.latex(expr, order="lex")


def text(expr) -> str:
    """SymPy's plain string form, which ``sympify`` reads back exactly."""
    return sp.sstr(expr, order="lex")


def unprintable(value: str, *, one_line: bool = False) -> str | None:
    """The first character of ``value`` that no document can carry (a control character, which XML 1.0
    forbids and LaTeX chokes on; tab and line breaks pass unless ``one_line``), described for an error
    message; None if there is none."""
    import unicodedata

    for ch in value:
        if ch in "\t\n\r" and not one_line:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff":
            return f"U+{ord(ch):04X}"
    return None


@lru_cache(maxsize=4096)
def tex_escape(value: str) -> str:
    """Make arbitrary text (a student's name, a file name) safe inside a LaTeX document."""
    return str(value).translate(_TEX_TABLE)


def _needs_parens(expr) -> bool:
    expr = sp.sympify(expr, strict=True)
    if expr.is_Add:
        return True
    if expr.is_Number:
        return expr < 0 or (expr.is_Rational and expr.q != 1)
    return expr.could_extract_minus_sign()


@dataclass(frozen=True)
class Printer:
    """Writes expressions, names and maths for one output format: ``text``, ``latex`` or ``markdown``."""

    kind: str

    @property
    def is_tex(self) -> bool:
        """Whether maths is written as LaTeX."""
        return self.kind != "text"

    def expr(self, value) -> str:
        """An expression (or number) in this format's maths notation."""
        return tex(value) if self.is_tex else text(value)

    def operand(self, value) -> str:
        """An expression as a factor of a product, in parentheses where needed."""
        body = self.expr(value)
        if not _needs_parens(value):
            return body
        return rf"\left({body}\right)" if self.is_tex else f"({body})"

    @property
    def times(self) -> str:
        """The multiplication sign between written-out factors."""
        return r" \cdot " if self.is_tex else " * "

    def name(self, symbol) -> str:
        """A symbol or a model name (f1 -> f_{1} in LaTeX)."""
        return tex(sp.Symbol(str(symbol))) if self.is_tex else str(symbol)

    def partial(self, top, bottom) -> str:
        """d top / d bottom."""
        if self.is_tex:
            return rf"\frac{{\partial {self.name(top)}}}{{\partial {self.name(bottom)}}}"
        return f"d{top}/d{bottom}"

    def matrix(self, m: sp.MatrixBase) -> str:
        """A matrix: pmatrix in LaTeX, nested brackets in text."""
        if self.is_tex:
            return tex(sp.Matrix(m))
        return "[" + ", ".join("[" + ", ".join(text(v) for v in row) + "]" for row in m.tolist()) + "]"

    def math(self, body: str) -> str:
        """Inline maths inside running text."""
        if self.kind == "latex":
            return rf"\({body}\)"
        if self.kind == "markdown":
            return f"${body}$"
        return body

    def words(self, value: str) -> str:
        """Running text in this format (escaped for LaTeX)."""
        return tex_escape(value) if self.kind == "latex" else str(value)


TEXT = Printer("text")
LATEX = Printer("latex")
MARKDOWN = Printer("markdown")


# --- fast writers for exact rationals given as (numerator, denominator) ---------------------------------
# Homework generation formats thousands of numbers; sympy.latex costs ~100 us each, these ~1 us.


def tex_rational(n: int, d: int) -> str:
    """LaTeX of n/d (d > 0): ``3``, ``-3``, ``\\frac{3}{4}``, ``-\\frac{3}{4}``."""
    if d == 1:
        return str(n)
    if n < 0:
        return f"-\\frac{{{-n}}}{{{d}}}"
    return f"\\frac{{{n}}}{{{d}}}"


def text_rational(n: int, d: int) -> str:
    """Plain text of n/d that SymPy reads back exactly: ``3``, ``-3/4``."""
    return str(n) if d == 1 else f"{n}/{d}"


def tex_operand(n: int, d: int) -> str:
    """n/d as a factor of a written-out product: negative values in parentheses."""
    body = tex_rational(n, d)
    return f"\\left({body}\\right)" if n < 0 else body


def tex_combination(terms) -> str:
    """LaTeX of sum_i (n_i/d_i) * m_i for terms (n, d, m) with m a LaTeX monomial ('' for 1).

    Zero terms are dropped, unit coefficients are written as the bare monomial, and signs join the
    terms (``\\frac{12}{5} x + \\frac{11}{5}``, ``- x - 3``); all zero gives ``0``.
    """
    parts = []
    for n, d, mono in terms:
        if n == 0:
            continue
        sign = "-" if n < 0 else "+"
        a = abs(n)
        if mono and a == 1 and d == 1:
            body = mono
        elif mono:
            body = f"{tex_rational(a, d)} {mono}"
        else:
            body = tex_rational(a, d)
        parts.append((sign, body))
    if not parts:
        return "0"
    first_sign, first = parts[0]
    out = ("-" if first_sign == "-" else "") + first
    for sign, body in parts[1:]:
        out += f" {sign} {body}"
    return out
