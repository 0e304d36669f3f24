"""The only place where user text becomes SymPy objects.

Nothing here calls ``eval``, ``exec``, ``sympify`` or ``parse_expr``. Text goes through four small
stages, each of which can refuse it with a one-line :class:`ParseError`:

1. (student answers only) Unicode and LaTeX are rewritten to plain ASCII, remembering for every
   output character the column it came from, so messages point into what the user typed;
2. a regex tokenizer that knows only numbers, names and ``+ - * / ** ^ ( ) ,``;
3. a token-level grammar check (missing operands, juxtaposition, parentheses, nesting depth), so
   that the Python parser only ever sees well-formed, shallow input;
4. ``ast.parse`` of a string rebuilt from the tokens (numbers replaced by placeholders), walked by a
   whitelist that builds SymPy objects directly and bounds every costly operation.

Results are exact (``0.1`` is ``Rational(1, 10)``), finite and real, and use the shared real
symbols of :func:`symbol`. SymPy evaluates as it builds, and some of that evaluation is slow on
hostile input (huge powers, roots of huge numbers, signs of huge constants, splitting arguments
that may not be real into real and imaginary parts); :class:`Limits` bounds each of these before
SymPy starts, so that any input is refused or parsed in a fraction of a second.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field as dataclass_field
from functools import lru_cache
from types import MappingProxyType

import sympy
from sympy import Abs, Add, Integer, Mul, Pow, Rational, S, Symbol

from .errors import NotRealError, ParseError

__all__ = [
    "DEFAULT_LIMITS",
    "FUNCTIONS",
    "Limits",
    "parse_assignments",
    "parse_expression",
    "parse_number",
    "split_assignment",
    "symbol",
]


# --------------------------------------------------------------------------------------------------
# Public settings and helpers


@lru_cache(maxsize=None)
def symbol(name: str) -> sympy.Symbol:
    """Return the real SymPy symbol called ``name``.

    Cached so that every module gets the *identical* object; SymPy compares symbols by name and
    assumptions, and a stray ``Symbol("x")`` without ``real=True`` would silently differ.
    """
    return Symbol(name, real=True)


@dataclass(frozen=True)
class Limits:
    """Bounds that keep parsing fast and the results printable, whatever the input."""

    max_length: int = 2000
    """Characters of input; checked before any other work."""
    max_depth: int = 40
    """Nesting depth of the expression tree (chains of ``+``/``-`` or ``*``/``/`` count once)."""
    max_exponent: int = 100
    """Largest |numerator| and denominator of a numeric exponent."""
    max_literal_chars: int = 40
    """Characters in one numeric literal."""
    max_scientific_exponent: int = 50
    """Largest |e| in a literal such as ``1e-3``."""
    max_number_bits: int = 4096
    """Largest numerator or denominator, in bits, that a power or any exact number may reach."""
    max_name_length: int = 32
    """Characters in one name."""
    max_root_bits: int = 256
    """Largest size, in bits, of the numbers involved in a fractional power (root) of numbers:
    SymPy factors them to extract roots, which took about a second at 4096 bits."""
    max_exp_argument: int = 10_000
    """Largest |argument| of ``exp`` (and of an irrational exponent) when it is a constant; other
    functions take constants up to about exp(this) in size. SymPy decides signs of constants
    numerically, which stalls on towers like ``exp(exp(exp(10)))`` or ``abs(sin(c))``, huge c."""
    max_complex_terms: int = 16
    """Largest size, in terms once expanded, of a function argument (or base of a fractional
    power) that SymPy cannot show to be real, such as ``(x + sqrt(y))**4``: SymPy splits such
    arguments into real and imaginary parts, expanding them, and ``abs(exp((2-sqrt(w))**100))``
    took seconds."""
    max_complex_number_bits: int = 64
    """Largest number, in bits, in such an argument: splitting it can take roots and powers of
    its numbers, and one with 10**40 in it took 44 seconds."""
    max_power_tower: int = 2
    """Deepest tower of non-integer powers, as in ``2**2**(1/2)`` (2 high): SymPy evaluates such
    towers numerically to order and compare terms, and ``2**-2**-2**...`` 12 high took seconds."""


DEFAULT_LIMITS = Limits()


def _sigmoid(z: sympy.Expr) -> sympy.Expr:
    """The logistic function, written out so that SymPy can differentiate and simplify it."""
    return 1 / (1 + sympy.exp(-z))


FUNCTIONS: Mapping[str, Callable[[sympy.Expr], sympy.Expr]] = MappingProxyType(
    {
        "abs": Abs,
        "cos": sympy.cos,
        "exp": sympy.exp,
        "ln": sympy.log,
        "log": sympy.log,
        "sigmoid": _sigmoid,
        "sin": sympy.sin,
        "sqrt": sympy.sqrt,
        "tanh": sympy.tanh,
    }
)
"""The functions a user may call, by name (``ln`` is an alias of ``log``)."""

# The alias is left out of the listing so that the message teaches one spelling.
_FUNCTION_LIST = ", ".join(sorted(name for name in FUNCTIONS if name != "ln"))

# Hard keywords of Python 3.11+ (``keyword.kwlist``), spelled out to keep the import list short.
_KEYWORDS = frozenset(
    "False None True and as assert async await break class continue def del elif else except "
    "finally for from global if import in is lambda nonlocal not or pass raise return try while "
    "with yield".split()
)

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _reserved_names() -> frozenset[str]:
    """Names that ``sympify`` reads as something other than a plain symbol (E, I, S, N, Q, beta, max, ...).

    Exact results are printed as strings that SymPy must read back as the same expression (the JSON
    contract); a symbol called E would come back as Euler's number, so such names are refused up front.
    """
    import builtins

    # inf and infinity would read as a name where the user meant a number that is not allowed anyway
    return (frozenset(sympy.__all__) | frozenset(n for n in dir(builtins) if not n.startswith("_"))
            | {"inf", "infinity", "Inf", "Infinity", "NaN"})


_RESERVED = _reserved_names()


def _reserved_message(name: str) -> str:
    return (f"'{name}' is a reserved name (SymPy or Python uses it for something else, so results could not "
            f"be read back exactly); use another name, e.g. {name}1")

_EXAMPLE_ASSIGNMENT = "expected NAME=VALUE, e.g. w1=0.5"


# --------------------------------------------------------------------------------------------------
# Shared state of one parse


@dataclass
class _Context:
    """Everything the stages of one ``parse_expression`` call need to know."""

    field: str
    text: str
    names: frozenset[str] | None
    numbers_only: bool
    student: bool
    limits: Limits
    numbers: list[sympy.Rational] = dataclass_field(default_factory=list)
    # Subexpressions already checked by _checked(); SymPy reuses them inside larger results.
    clean: set[sympy.Basic] = dataclass_field(default_factory=set)

    def error(self, message: str) -> ParseError:
        return ParseError(self.field, message)

    def not_real(self, message: str) -> ParseError:
        """A value that is not a finite real number (as opposed to one too large to handle)."""
        return NotRealError(self.field, message)

    def cannot_read(self, column: int, detail: str = "") -> ParseError:
        message = f"could not read '{_snippet(self.text, column)}' near column {column}"
        return ParseError(self.field, f"{message}; {detail}" if detail else message)

    def too_deep(self) -> ParseError:
        return ParseError(
            self.field, f"expression is nested too deeply (limit {self.limits.max_depth} levels)"
        )


def _snippet(text: str, column: int, width: int = 30) -> str:
    """The part of ``text`` around ``column``, on one line, for quoting in a message."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(flat) <= 2 * width:
        return flat
    start = max(0, column - 1 - width)
    end = min(len(flat), column - 1 + width)
    return ("..." if start > 0 else "") + flat[start:end] + ("..." if end < len(flat) else "")


def quote(text: str, limit: int = 40) -> str:
    """``text`` made safe to quote in an error message: one line, printable, not too long."""
    flat = "".join(ch if ch.isprintable() else "?" for ch in text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _check_length(text: object, field: str, max_length: int) -> str:
    if not isinstance(text, str):
        raise ParseError(field, f"expected text, got {type(text).__name__}")
    if len(text) > max_length:
        raise ParseError(
            field, f"expression is {len(text)} characters long (limit {max_length})"
        )
    return text


# --------------------------------------------------------------------------------------------------
# Stage 1 (student answers): Unicode and LaTeX to plain ASCII

_UNICODE_REPLACEMENTS = {
    "\u2212": "-",  # MINUS SIGN
    "\u2013": "-",  # EN DASH
    "\u2012": "-",  # FIGURE DASH
    "\u2010": "-",  # HYPHEN
    "\u2011": "-",  # NON-BREAKING HYPHEN
    "\u00d7": "*",  # MULTIPLICATION SIGN
    "\u00b7": "*",  # MIDDLE DOT
    "\u22c5": "*",  # DOT OPERATOR
    "\u2219": "*",  # BULLET OPERATOR
    "\u2217": "*",  # ASTERISK OPERATOR
    "\u00f7": "/",  # DIVISION SIGN
    "\u2215": "/",  # DIVISION SLASH
    "\u00a0": " ",  # NO-BREAK SPACE
    "\u2007": " ",  # FIGURE SPACE
    "\u2009": " ",  # THIN SPACE
    "\u200a": " ",  # HAIR SPACE
    "\u202f": " ",  # NARROW NO-BREAK SPACE
    "\u200b": " ",  # ZERO WIDTH SPACE
    "\ufeff": " ",  # BYTE ORDER MARK, left behind by some editors
}
_SUPERSCRIPTS = {
    "\u2070": "0", "\u00b9": "1", "\u00b2": "2", "\u00b3": "3", "\u2074": "4",
    "\u2075": "5", "\u2076": "6", "\u2077": "7", "\u2078": "8", "\u2079": "9",
    "\u207b": "-", "\u207a": "+",
}  # fmt: skip

_GREEK = frozenset(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
    "pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()
)
_LATEX_FUNCTIONS = frozenset({"exp", "log", "ln", "sin", "cos", "tanh"})
_LATEX_FRACTIONS = frozenset({"frac", "dfrac", "tfrac"})
_LATEX_SPACES = frozenset({"quad", "qquad"})
_LATEX_COMMAND_RE = re.compile(r"[A-Za-z]+")
_SUBSCRIPT_RE = re.compile(r"[A-Za-z0-9]+")


class _Out:
    """Output text plus, for every character, the index in the original text it came from."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.origin: list[int] = []

    def emit(self, piece: str, position: int) -> None:
        self.parts.append(piece)
        self.origin.extend([position] * len(piece))


def _student_source(ctx: _Context) -> tuple[str, list[int]]:
    """Rewrite a student's Unicode/LaTeX answer to the ASCII grammar, with column origins."""
    out = _Out()
    _translate(ctx.text, 0, len(ctx.text), out, ctx, 0)
    return "".join(out.parts), out.origin


def _translate(text: str, start: int, end: int, out: _Out, ctx: _Context, depth: int) -> None:
    """Translate ``text[start:end]``; ``depth`` counts nested LaTeX arguments."""
    if depth > ctx.limits.max_depth:
        raise ctx.too_deep()
    i = start
    while i < end:
        ch = text[i]
        if ch == "\\":
            i = _latex_command(text, i, end, out, ctx, depth)
        elif ch == "$":
            i += 1
        elif ch in "{[":
            out.emit("(", i)
            i += 1
        elif ch in "}]":
            out.emit(")", i)
            i += 1
        elif ch == "_" and i + 1 < end and text[i + 1] == "{":
            inner_start, inner_end, after = _read_group(text, i + 1, end, ctx)
            subscript = text[inner_start:inner_end].strip()
            if not _SUBSCRIPT_RE.fullmatch(subscript):
                raise ctx.error(
                    f"subscripts must be letters or digits, e.g. w_{{3}} (column {i + 1})"
                )
            # The tokenizer joins "w_3" into the name w3; the space ends the name, as "}" does.
            out.emit(f"_{subscript} ", i)
            i = after
        elif ch in _SUPERSCRIPTS:
            run_end = i
            while run_end < end and text[run_end] in _SUPERSCRIPTS:
                run_end += 1
            digits = "".join(_SUPERSCRIPTS[c] for c in text[i:run_end])
            out.emit(f"^({digits})", i)
            i = run_end
        else:
            out.emit(_UNICODE_REPLACEMENTS.get(ch, ch), i)
            i += 1


def _latex_command(text: str, i: int, end: int, out: _Out, ctx: _Context, depth: int) -> int:
    """Translate the LaTeX command starting at the backslash ``text[i]``; return the next index."""
    match = _LATEX_COMMAND_RE.match(text, i + 1, end)
    if match is None:
        return _latex_symbol(text, i, end, out, ctx)
    name, after = match.group(), match.end()
    if name in _LATEX_FRACTIONS:
        numerator, after = _read_argument(text, after, end, ctx, f"\\{name}")
        denominator, after = _read_argument(text, after, end, ctx, f"\\{name}")
        out.emit("((", i)
        _translate(text, *numerator, out, ctx, depth + 1)
        out.emit(")/(", i)
        _translate(text, *denominator, out, ctx, depth + 1)
        out.emit("))", i)
        return after
    if name == "sqrt":
        return _latex_sqrt(text, i, after, end, out, ctx, depth)
    if name in ("cdot", "times"):
        out.emit("*", i)
        return after
    if name == "div":
        out.emit("/", i)
        return after
    if name in _LATEX_FUNCTIONS or name in _GREEK:
        # Spaces keep "x\eta" from becoming the single name "xeta".
        out.emit(f" {name} ", i)
        return after
    if name in _LATEX_SPACES:
        out.emit(" ", i)
        return after
    if name in ("left", "right"):
        return _latex_delimiter(text, i, name, after, end, out, ctx)
    raise ctx.error(f"unknown LaTeX command '\\{quote(name)}' at column {i + 1}")


def _latex_symbol(text: str, i: int, end: int, out: _Out, ctx: _Context) -> int:
    """Translate a backslash followed by one non-letter, such as ``\\,`` or ``\\(``."""
    if i + 1 >= end:
        raise ctx.error(f"a lone '\\' at column {i + 1}")
    ch = text[i + 1]
    if ch in ",;!: ":
        out.emit(" ", i)
    elif ch in "()[]":
        pass  # \( \) \[ \] only delimit maths mode.
    elif ch in "{}":
        out.emit("(" if ch == "{" else ")", i)
    else:
        raise ctx.error(f"unknown LaTeX command '\\{quote(ch)}' at column {i + 1}")
    return i + 2


def _latex_sqrt(
    text: str, i: int, after: int, end: int, out: _Out, ctx: _Context, depth: int
) -> int:
    """Translate ``\\sqrt{a}`` and ``\\sqrt[n]{a}``."""
    j = _skip_spaces(text, after, end)
    index = None
    if j < end and text[j] == "[":
        close = text.find("]", j + 1, end)
        if close < 0:
            raise ctx.error(f"missing ']' for the '[' of \\sqrt at column {j + 1}")
        index, j = (j + 1, close), close + 1
    radicand, after = _read_argument(text, j, end, ctx, "\\sqrt")
    if index is None:
        out.emit(" sqrt(", i)
        _translate(text, *radicand, out, ctx, depth + 1)
        out.emit(")", i)
    else:
        out.emit("((", i)
        _translate(text, *radicand, out, ctx, depth + 1)
        out.emit(")**(1/(", i)
        _translate(text, *index, out, ctx, depth + 1)
        out.emit(")))", i)
    return after


def _latex_delimiter(
    text: str, i: int, name: str, after: int, end: int, out: _Out, ctx: _Context
) -> int:
    """Translate ``\\left(``, ``\\right]`` and friends to plain parentheses."""
    j = _skip_spaces(text, after, end)
    opening = name == "left"
    if j < end and text[j] in ("([" if opening else ")]"):
        out.emit("(" if opening else ")", i)
        return j + 1
    if text.startswith("\\{" if opening else "\\}", j):
        out.emit("(" if opening else ")", i)
        return j + 2
    if j < end and text[j] == ".":
        return j + 1
    raise ctx.error(f"\\{name} at column {i + 1} must be followed by a bracket such as ( or [")


def _skip_spaces(text: str, i: int, end: int) -> int:
    while i < end and text[i] in " \t\r\n":
        i += 1
    return i


def _read_argument(
    text: str, i: int, end: int, ctx: _Context, command: str
) -> tuple[tuple[int, int], int]:
    """Read one LaTeX argument: ``{...}``, a single character (``\\frac12``) or ``\\name``.

    Returns ((start, end) of the argument's text, index after it).
    """
    i = _skip_spaces(text, i, end)
    if i < end and text[i] == "{":
        inner_start, inner_end, after = _read_group(text, i, end, ctx)
        return (inner_start, inner_end), after
    if i < end and text[i] == "\\":
        match = _LATEX_COMMAND_RE.match(text, i + 1, end)
        if match is not None:
            return (i, match.end()), match.end()
    if i < end and (text[i].isascii() and (text[i].isalnum() or text[i] == ".")):
        return (i, i + 1), i + 1
    example = "\\sqrt{2}" if command == "\\sqrt" else f"{command}{{1}}{{2}}"
    raise ctx.error(f"{command} needs its arguments in braces, e.g. {example} (column {i + 1})")


def _read_group(text: str, i: int, end: int, ctx: _Context) -> tuple[int, int, int]:
    """Given ``text[i] == '{'``, return (inner start, inner end, index after the ``}``)."""
    level = 0
    j = i
    while j < end:
        ch = text[j]
        if ch == "\\":
            j += 2  # an escaped brace does not count
            continue
        if ch == "{":
            level += 1
        elif ch == "}":
            level -= 1
            if level == 0:
                return i + 1, j, j + 1
        j += 1
    raise ctx.error(f"missing '}}' for the '{{' at column {i + 1}")


# --------------------------------------------------------------------------------------------------
# Stage 2: tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name" or "op"
    text: str  # the number or name as typed; operators normalised ("^" -> "**")
    column: int  # 1-based column in the original text
    value: sympy.Rational | None = None  # exact value of a number


_TOKEN_RE = re.compile(
    r"(?P<space>[ \t\r\n]+)"
    r"|(?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|[-+*/^(),])"
)

# Hints for ASCII characters that people try; everything else gets just the column.
_CHARACTER_HINTS = {
    "'": "text in quotes is not allowed",
    '"': "text in quotes is not allowed",
    ".": "'.' may only appear inside a number, e.g. 0.5",
    "=": "write an expression, not an equation",
    "<": "write an expression, not a comparison",
    ">": "write an expression, not a comparison",
    "!": "write an expression, not a comparison",
    "%": "'%' is not supported",
    "[": "use ( ) for grouping",
    "]": "use ( ) for grouping",
    "{": "use ( ) for grouping",
    "}": "use ( ) for grouping",
    "\\": "LaTeX is not accepted here",
}


def _unexpected_character(ch: str, column: int, ctx: _Context) -> ParseError:
    """A message naming the character (and its Unicode name) and, where we can, the fix."""
    if ch.isascii() and ch.isprintable():
        description = repr(ch)
        hint = _CHARACTER_HINTS.get(ch)
    else:
        name = unicodedata.name(ch, f"U+{ord(ch):04X}")
        description = f"{ch!r} ({name})"
        hint = _non_ascii_hint(ch, name)
    message = f"unexpected character {description} at column {column}"
    return ctx.error(f"{message}; {hint}" if hint else message)


def _non_ascii_hint(ch: str, name: str) -> str | None:
    if ch in _UNICODE_REPLACEMENTS:
        replacement = _UNICODE_REPLACEMENTS[ch]
        return "use an ordinary space" if replacement == " " else f"use '{replacement}'"
    if ch in _SUPERSCRIPTS:
        return f"use ^, e.g. x^{_SUPERSCRIPTS[ch]}"
    if name.startswith("GREEK") and "LETTER" in name:
        return f"write Greek letters by name, e.g. {name.rsplit(' ', 1)[-1].lower()}"
    if unicodedata.category(ch).startswith("L"):
        return "names may only use the ASCII letters a-z and A-Z"
    return None


def _tokenize(source: str, origin: list[int] | None, ctx: _Context) -> list[_Token]:
    """Split ``source`` into tokens, refusing anything outside the grammar's alphabet."""

    def column(position: int) -> int:
        return position + 1 if origin is None else origin[position] + 1

    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if match is None:
            raise _unexpected_character(source[position], column(position), ctx)
        kind, text, col = match.lastgroup, match.group(), column(position)
        position = match.end()
        if kind == "num":
            _check_after_number(source, position, text, col, ctx)
            tokens.append(_Token("num", text, col, _number_value(text, col, ctx)))
        elif kind == "name":
            tokens.append(_Token("name", _checked_name(text, col, ctx), col))
        elif kind == "op":
            if text == "//":
                raise ctx.cannot_read(col, "'//' (integer division) is not supported; use '/'")
            tokens.append(_Token("op", "**" if text == "^" else text, col))
    return tokens


def _check_after_number(source: str, end: int, text: str, column: int, ctx: _Context) -> None:
    """Refuse literals that only look like one number, e.g. ``1.2.3`` or ``1_000``."""
    following = source[end : end + 1]
    if following == ".":
        raise ctx.cannot_read(column, f"'{text}.' is not a number")
    if following == "_":
        raise ctx.cannot_read(column, "write numbers without '_', e.g. 1000")
    if text == "0" and following in ("x", "X", "b", "B", "o", "O"):
        rest = source[end + 1 : end + 2]
        if rest.isascii() and rest.isalnum():
            raise ctx.cannot_read(column, "hexadecimal, binary and octal numbers are not supported")


def _number_value(text: str, column: int, ctx: _Context) -> sympy.Rational:
    """The exact value of a decimal literal: "0.1" is 1/10, never the float 0.1000000000000000055."""
    limits = ctx.limits
    if len(text) > limits.max_literal_chars:
        raise ctx.error(
            f"number '{quote(text, 20)}' at column {column} is too long "
            f"(limit {limits.max_literal_chars} characters)"
        )
    mantissa, _, exponent_text = text.lower().partition("e")
    exponent = int(exponent_text) if exponent_text else 0
    if abs(exponent) > limits.max_scientific_exponent:
        raise ctx.error(
            f"the exponent in '{text}' at column {column} is out of range (limit -{limits.max_scientific_exponent} "
            f"to {limits.max_scientific_exponent})"
        )
    whole, _, fraction = mantissa.partition(".")
    digits = int((whole + fraction) or "0")
    scale = len(fraction) - exponent
    if scale >= 0:
        return Rational(digits, 10**scale)
    return Integer(digits * 10**-scale)


def _checked_name(text: str, column: int, ctx: _Context) -> str:
    """Validate a name token; in student answers ``w_3`` becomes ``w3``."""
    if text.startswith("_"):
        raise ctx.error(
            f"'{quote(text)}' at column {column} cannot be used as a name; "
            "names must start with a letter"
        )
    if ctx.student and "_" in text and not (ctx.names is not None and text in ctx.names):
        text = text.replace("_", "")
    if text in _KEYWORDS:
        raise ctx.error(f"'{text}' is a Python keyword and cannot be used as a name (column {column}); "
                        f"use another name, e.g. {text[:3]}1")
    if len(text) > ctx.limits.max_name_length:
        raise ctx.error(
            f"name '{quote(text, 20)}' at column {column} is too long "
            f"(limit {ctx.limits.max_name_length} characters)"
        )
    return text


def _is_function_like(name: str) -> bool:
    # Case slips ("Exp(x)") stay calls, so that they earn a "did you mean exp?" hint.
    return name in FUNCTIONS or name.lower() in FUNCTIONS


def _insert_implicit_products(tokens: list[_Token], ctx: _Context) -> list[_Token]:
    """Student answers: ``2x``, ``2(x+1)``, ``(x+1)(x-1)`` and ``x y`` mean products."""
    result: list[_Token] = []
    for token in tokens:
        if result and _ends_operand(result[-1]) and _starts_operand(token):
            previous = result[-1]
            if previous.kind == "num" and token.kind == "num":
                raise ctx.cannot_read(
                    token.column,
                    f"two numbers in a row ({previous.text} {token.text}); "
                    "join them or put '*' between them",
                )
            is_call = previous.kind == "name" and token.text == "(" and _is_function_like(
                previous.text
            )
            if not is_call:
                result.append(_Token("op", "*", token.column))
        result.append(token)
    return result


def _ends_operand(token: _Token) -> bool:
    return token.kind != "op" or token.text == ")"


def _starts_operand(token: _Token) -> bool:
    return token.kind != "op" or token.text == "("


# --------------------------------------------------------------------------------------------------
# Stage 3: grammar and depth on the token stream


@dataclass
class _Open:
    """An open parenthesis while checking the token stream."""

    token: _Token
    function: str | None  # the called name, or None for grouping
    outer_chain: int  # the enclosing level's run of unary/power operators


def _check_structure(tokens: list[_Token], ctx: _Context) -> None:
    """Refuse malformed token streams with a precise column, before Python's parser sees them.

    Also bounds nesting: open parentheses plus runs of unary signs and ``**`` (each of which nests
    one level deeper in the tree), so the CPython parser never sees more than max_depth levels.
    """
    if not tokens:
        raise ctx.error("empty expression")
    expect_operand = True
    stack: list[_Open] = []
    chain = 0  # unary signs and ** since the last + - * / , at this level
    nesting = 0  # sum of the enclosing levels' chains
    previous: _Token | None = None
    for token in tokens:
        if expect_operand:
            if token.kind != "op":
                expect_operand = False
            elif token.text == "(":
                stack.append(_Open(token, None, chain))
                nesting += chain
                chain = 0
            elif token.text in ("+", "-"):
                chain += 1
            elif token.text == ")" and not stack:
                raise _unmatched_close(token, ctx)
            else:
                raise _missing_operand(token, previous, stack, ctx)
        elif token.kind != "op":
            raise _juxtaposition(previous, token, ctx)
        elif token.text in ("+", "-", "*", "/"):
            chain = 0
            expect_operand = True
        elif token.text == "**":
            chain += 1
            expect_operand = True
        elif token.text == ")":
            if not stack:
                raise _unmatched_close(token, ctx)
            opened = stack.pop()
            chain = opened.outer_chain
            nesting -= chain
        elif token.text == ",":
            if not stack or stack[-1].function is None:
                raise _stray_comma(token, previous, ctx)
            chain = 0
            expect_operand = True
        elif token.text == "(" and previous is not None and previous.kind == "name":
            stack.append(_Open(token, previous.text, chain))
            nesting += chain
            chain = 0
            expect_operand = True
        else:
            raise _juxtaposition(previous, token, ctx)
        if len(stack) + nesting + chain > ctx.limits.max_depth:
            raise ctx.too_deep()
        previous = token
    if expect_operand:
        assert previous is not None
        raise ctx.cannot_read(
            previous.column, f"something is missing after '{_as_typed(previous, ctx)}'"
        )
    if stack:
        opened = stack[-1].token
        char = _original_char(ctx, opened, "(")
        closing = {"(": ")", "[": "]", "{": "}"}.get(char, ")")
        raise ctx.error(f"missing '{closing}' to match the '{char}' at column {opened.column}")


def _original_char(ctx: _Context, token: _Token, default: str) -> str:
    """The character the user typed for a bracket token (``{`` in LaTeX answers, say)."""
    char = ctx.text[token.column - 1 : token.column]
    return char if char and char in "()[]{}" else default


def _as_typed(token: _Token, ctx: _Context) -> str:
    """An operator as the user wrote it ("^" rather than the normalised "**")."""
    if token.text == "**" and ctx.text[token.column - 1 : token.column] == "^":
        return "^"
    return token.text


def _unmatched_close(token: _Token, ctx: _Context) -> ParseError:
    return ctx.error(
        f"unexpected '{_original_char(ctx, token, ')')}' at column {token.column}; "
        "there is no '(' before it to close"
    )


def _missing_operand(
    token: _Token, previous: _Token | None, stack: list[_Open], ctx: _Context
) -> ParseError:
    if token.text == ")" and previous is not None and previous.text == "(":
        function = stack[-1].function if stack else None
        if function is not None:
            return ctx.cannot_read(
                token.column, f"{function}() needs one argument, e.g. {function}(x)"
            )
        return ctx.cannot_read(token.column, "empty parentheses")
    return ctx.cannot_read(
        token.column, f"expected a number or a name before '{_as_typed(token, ctx)}'"
    )


def _stray_comma(token: _Token, previous: _Token | None, ctx: _Context) -> ParseError:
    detail = "',' only separates function arguments"
    if previous is not None and previous.kind == "num":
        # Most likely a decimal comma, as in 0,5.
        detail += "; write decimals with '.', e.g. 1.5"
    return ctx.cannot_read(token.column, detail)


def _juxtaposition(previous: _Token | None, token: _Token, ctx: _Context) -> ParseError:
    """Two operands side by side: suggest the product the user probably meant."""
    assert previous is not None
    left = "(...)" if previous.text == ")" else previous.text
    right = "(...)" if token.text == "(" else token.text
    return ctx.cannot_read(token.column, f"did you mean {left}*{right}?")


# --------------------------------------------------------------------------------------------------
# Stage 4: Python's parser, then a whitelist walker that builds SymPy objects


def _assemble(tokens: list[_Token], ctx: _Context) -> str:
    """Rebuild source for ``ast.parse``; numbers become placeholders ``_n0``, ``_n1``, ...

    Placeholders keep Python's literal rules (leading zeros, 1e999 -> inf, ...) out of the way;
    user names cannot start with '_', so they never collide.
    """
    parts = []
    for token in tokens:
        if token.kind == "num":
            assert token.value is not None
            parts.append(f"_n{len(ctx.numbers)}")
            ctx.numbers.append(token.value)
        else:
            parts.append(token.text)
    return " ".join(parts)


def _parse_python(source: str, ctx: _Context) -> ast.expr:
    try:
        return ast.parse(source, mode="eval").body
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
        # The token check should make this unreachable; never leak Python's own wording.
        raise ctx.cannot_read(1) from None


def _build(node: ast.expr, ctx: _Context, depth: int) -> sympy.Expr:
    """Build the SymPy object for ``node``, allowing only the grammar's constructs."""
    if depth > ctx.limits.max_depth:
        raise ctx.too_deep()
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _build_sum(node, ctx, depth)
        if isinstance(node.op, (ast.Mult, ast.Div)):
            return _build_product(node, ctx, depth)
        if isinstance(node.op, ast.Pow):
            base = _build(node.left, ctx, depth + 1)
            exponent = _build(node.right, ctx, depth + 1)
            return _power(base, exponent, ctx)
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return _checked(-_build(node.operand, ctx, depth + 1), ctx)
        if isinstance(node.op, ast.UAdd):
            return _build(node.operand, ctx, depth + 1)
    elif isinstance(node, ast.Call):
        return _build_call(node, ctx, depth)
    elif isinstance(node, ast.Name):
        return _build_name(node.id, ctx)
    raise ctx.cannot_read(getattr(node, "col_offset", 0) + 1, "this construct is not supported")


def _left_spine(node: ast.expr, ops: tuple[type, ...]) -> list[tuple[type, ast.expr]]:
    """Flatten a left-associative chain ``a - b + c`` into [(Add, a), (Sub, b), (Add, c)].

    Walking the chain iteratively keeps a 500-term sum from counting as 500 levels of nesting.
    """
    items: list[tuple[type, ast.expr]] = []
    while isinstance(node, ast.BinOp) and isinstance(node.op, ops):
        items.append((type(node.op), node.right))
        node = node.left
    items.append((ops[0], node))
    items.reverse()
    return items


def _build_sum(node: ast.BinOp, ctx: _Context, depth: int) -> sympy.Expr:
    terms = []
    for op, operand in _left_spine(node, (ast.Add, ast.Sub)):
        value = _build(operand, ctx, depth + 1)
        terms.append(-value if op is ast.Sub else value)
    # Add is associative in SymPy, and one n-ary Add avoids the quadratic cost of a left fold.
    return _checked(Add(*terms), ctx)


# Up to this many factors, products are folded left exactly as Python would evaluate a*b*c, so
# results equal the same expression written with SymPy operators (Mul distributes a number over a
# sum only when they meet alone). Longer products, which people do not type, use one n-ary Mul:
# the same value, built in linear rather than quadratic time.
_FOLD_LIMIT = 32


def _build_product(node: ast.BinOp, ctx: _Context, depth: int) -> sympy.Expr:
    factors: list[tuple[type, sympy.Expr]] = []
    for op, operand in _left_spine(node, (ast.Mult, ast.Div)):
        value = _build(operand, ctx, depth + 1)
        if op is ast.Div and value == 0:
            raise ctx.not_real("division by zero")
        factors.append((op, value))
    if len(factors) > _FOLD_LIMIT:
        parts = [Pow(v, -1) if op is ast.Div else v for op, v in factors]
        return _checked(Mul(*parts), ctx)
    result = factors[0][1]
    for op, value in factors[1:]:
        result = _checked(result / value if op is ast.Div else result * value, ctx)
    return _checked(result, ctx)


def _build_call(node: ast.Call, ctx: _Context, depth: int) -> sympy.Expr:
    if not isinstance(node.func, ast.Name):
        raise ctx.cannot_read(node.col_offset + 1, "only functions can be called")
    name = node.func.id
    if name not in FUNCTIONS:
        raise ctx.error(_unknown_function(name, ctx))
    if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
        raise ctx.error(f"{name} takes one argument, e.g. {name}(x)")
    argument = _build(node.args[0], ctx, depth + 1)
    return _apply_function(name, argument, ctx)


def _unknown_function(name: str, ctx: _Context) -> str:
    message = f"unknown function '{name}'; "
    if name.lower() in FUNCTIONS:
        return message + f"did you mean {name.lower()}?"
    if ctx.names is not None and name in ctx.names:
        return message + f"for a product write {name}*(...)"
    return message + f"allowed: {_FUNCTION_LIST}"


def _apply_function(name: str, argument: sympy.Expr, ctx: _Context) -> sympy.Expr:
    if argument.is_number:
        _check_function_argument(name, argument, ctx)
    if name != "sqrt":  # sqrt is checked as a power
        _check_may_be_complex(argument, ctx, function=name)
    if name in ("exp", "sigmoid"):
        _check_log_powers(argument, ctx)
    if name == "sqrt":
        if _is_negative_constant(argument):
            raise ctx.not_real("square root of a negative number is not a real number")
        return _power(argument, S.Half, ctx)
    if name in ("log", "ln"):
        if argument == 0:
            raise ctx.not_real("log(0) is undefined: not a real number")
        if _is_negative_constant(argument):
            raise ctx.not_real("log of a negative number is not a real number")
    return _checked(FUNCTIONS[name](argument), ctx)


def _build_name(name: str, ctx: _Context) -> sympy.Expr:
    if name.startswith("_n"):
        value = ctx.numbers[int(name[2:])]
        ctx.clean.add(value)
        return value
    if name in FUNCTIONS:
        raise ctx.error(f"'{name}' is a function; write {name}(...)")
    if ctx.numbers_only:
        raise ctx.error(f"expected a number, found the name '{name}'")
    if ctx.names is not None and name not in ctx.names:
        raise ctx.error(_unknown_name(name, ctx.names))
    if name in _RESERVED and ctx.names is None:
        raise ctx.error(_reserved_message(name))
    result = symbol(name)
    ctx.clean.add(result)
    return result


def _unknown_name(name: str, names: frozenset[str]) -> str:
    if not names:
        return f"unknown name '{name}'; no names are allowed here"
    listing = ", ".join(sorted(names))
    hint = _name_hint(name, names)
    if hint is None:
        return f"unknown name '{name}'; use one of: {listing}"
    return f"unknown name '{name}'; {hint} (use one of: {listing})"


def _name_hint(name: str, names: frozenset[str]) -> str | None:
    """A guess at what the user meant by an unknown name: a case slip or a missing '*'."""
    same_letters = sorted(n for n in names if n.lower() == name.lower())
    if same_letters:
        return f"did you mean {same_letters[0]}?"
    parts = _split_into_names(name, names)
    if parts is not None:
        return f"did you mean {'*'.join(parts)}?"
    for function in sorted(FUNCTIONS, key=len, reverse=True):
        rest = name[len(function) :]
        if name.startswith(function) and rest:
            inner = [rest] if rest in names else _split_into_names(rest, names)
            if inner is not None:
                return f"did you mean {function}({'*'.join(inner)})?"
    if name == "e":
        return "for Euler's number write exp(1), and exp(x) for e^x"
    return None


def _split_into_names(name: str, names: frozenset[str]) -> list[str] | None:
    """Split ``w1x`` into known names [w1, x], using as few pieces as possible (at least two)."""
    best: list[list[str] | None] = [None] * (len(name) + 1)
    best[0] = []
    for start in range(len(name)):
        prefix = best[start]
        if prefix is None:
            continue
        for candidate in names:
            stop = start + len(candidate)
            if candidate and name.startswith(candidate, start):
                current = best[stop]
                if current is None or len(prefix) + 1 < len(current):
                    best[stop] = prefix + [candidate]
    found = best[len(name)]
    return found if found is not None and len(found) >= 2 else None


# --------------------------------------------------------------------------------------------------
# Bounds on the SymPy side: exponents, sizes of numbers, reality


def rational_bits(number: sympy.Rational) -> int:
    """The size of an exact rational: the bits of its larger part (numerator or denominator)."""
    return max(abs(number.p).bit_length(), number.q.bit_length())


def _power_cost(expr: sympy.Expr, exponent: sympy.Rational) -> int:
    """About how many bits of exact numbers SymPy handles when it raises ``expr`` to ``exponent``.

    SymPy distributes powers over the factors of a product and evaluates powers of numbers, but
    leaves powers of sums alone, so only numbers and products count. A root n**(p/q) is found by
    factoring with numbers growing like n**p, and (1/n)**(p/q) is rewritten n**(p*(q-1)/q)/n**p.
    """
    if expr.is_Rational:
        p, q = abs(exponent.p), exponent.q
        cost = rational_bits(expr) * p
        if q > 1 and expr.q > 1:
            cost += expr.q.bit_length() * p * (q - 1)
        return cost
    if expr.is_Pow and expr.base.is_Rational and expr.exp.is_Rational:
        return _power_cost(expr.base, expr.exp * exponent)
    if expr.is_Mul:
        return sum(_power_cost(factor, exponent) for factor in expr.args)
    return 0


def _describe(number: sympy.Rational) -> str:
    # str() of a huge integer is slow and refused by Python past 4300 digits.
    if rational_bits(number) <= 64:
        return str(number)
    return f"(a number of about {int(rational_bits(number) * 0.30103) + 1} digits)"


def _power(base: sympy.Expr, exponent: sympy.Expr, ctx: _Context) -> sympy.Expr:
    """``base**exponent`` after refusing exponents, sizes and signs that would hurt."""
    _check_power(base, exponent, ctx)
    return _checked(Pow(base, exponent), ctx)


def _check_power(base: sympy.Expr, exponent: sympy.Expr, ctx: _Context) -> None:
    """Refuse ``base**exponent`` if SymPy would need huge numbers or time, or it is not real."""
    limits = ctx.limits
    if base is S.Exp1:  # exp(1)**z becomes exp(z)
        _check_log_powers(exponent, ctx)
    if exponent.is_Rational:
        p, q = exponent.p, exponent.q
        if abs(p) > limits.max_exponent:
            raise ctx.error(
                f"exponent {_describe(exponent)} is too large (limit {limits.max_exponent})"
            )
        if q > limits.max_exponent:
            raise ctx.error(
                f"exponent {_describe(exponent)} has too large a denominator "
                f"(limit {limits.max_exponent})"
            )
        cost = _power_cost(base, exponent)
        if q != 1 and cost > limits.max_root_bits:
            raise ctx.error(
                f"root too costly to take exactly: it involves numbers of about {cost} bits "
                f"(limit {limits.max_root_bits})"
            )
        if cost > limits.max_number_bits:
            raise ctx.error(
                f"power too large: the result would have about {cost} bits "
                f"(limit {limits.max_number_bits})"
            )
        if p < 0 and base == 0:
            raise ctx.not_real("division by zero (0 to a negative power)")
    elif exponent.is_number and _magnitude_exceeds(exponent, limits.max_exp_argument):
        raise ctx.error(
            f"exponent is too large (limit {limits.max_exp_argument} in absolute value)"
        )
    if not exponent.is_Integer and 1 + _tower_height(exponent) > limits.max_power_tower:
        raise ctx.error(f"powers nested too deeply (limit {limits.max_power_tower} non-integer powers in a tower)")
    if not exponent.is_Integer:
        if _is_negative_constant(base):
            raise ctx.not_real("a negative number to a non-integer power is not a real number")
        _check_may_be_complex(base, ctx)


def _tower_height(expr: sympy.Expr) -> int:
    """How many non-integer powers are stacked in ``expr``, each in the exponent of the one below."""
    if expr.is_Atom:
        return 0
    below = max((_tower_height(arg) for arg in expr.args), default=0)
    if expr.is_Pow and not expr.exp.is_Integer:
        return max(below, 1 + _tower_height(expr.exp))
    return below


def _check_log_powers(argument: sympy.Expr, ctx: _Context) -> None:
    """Check every c*log(b) inside an exp argument as the power b**c, before SymPy computes it.

    exp evaluates exp(c*log(b)) to b**c, and runs logcombine over its argument, which rewrites
    c*log(b) anywhere inside to log(b**c): sigmoid(log(2**100*log(2))) made SymPy compute
    2**(2**100). Symbolic exponents (x*log(2) -> 2**x) stay unevaluated and are not checked.
    """
    stack = [argument]
    while stack:
        node = stack.pop()
        if node.is_Atom:
            continue
        if node.is_Mul:
            factors = node.args
            for index, factor in enumerate(factors):
                if isinstance(factor, sympy.log):
                    exponent = Mul(*factors[:index], *factors[index + 1 :])
                    if exponent.is_number:
                        _check_power(factor.args[0], exponent, ctx)
        stack.extend(node.args)


def _check_may_be_complex(
    argument: sympy.Expr, ctx: _Context, function: str | None = None
) -> None:
    """Refuse arguments that SymPy cannot show to be real when they would make SymPy slow.

    SymPy splits such an argument into real and imaginary parts, expanding powers and products,
    and recurses into functions and roots of other such arguments: tanh(tanh(...(sqrt(w))...))
    took exponential time in the nesting. So such arguments must be small and hold small numbers,
    and may not themselves contain a function or root of something that may not be real.
    """
    if _surely_real(argument):
        return
    subject = f"the argument of {function}" if function else "the base of a non-integer power"
    # The nesting test comes before SymPy's own realness query on the whole argument: that query
    # recurses into the nested part (reducing im(a) modulo pi for a tanh) and is the slow step.
    nested = _complex_part(argument)
    if nested is not None:
        raise ctx.error(
            f"{subject} may not be real and contains {_short(nested)}, itself of something "
            "that may not be real; such nesting is too slow to handle exactly, simplify it"
        )
    if argument.is_extended_real:
        return
    limit = ctx.limits.max_complex_terms
    # functions and roots split in two; their own arguments were checked when they were built
    if expansion_size(argument, limit, opaque=2, inside=False) > limit:
        raise ctx.error(
            f"{subject} may not be real and is too complex to handle exactly "
            f"(more than {limit} terms when expanded); simplify it"
        )
    bits_limit = ctx.limits.max_complex_number_bits
    if any(rational_bits(number) > bits_limit for number in argument.atoms(Rational)):
        raise ctx.error(
            f"{subject} may not be real and holds a number too large to handle exactly "
            f"(limit {bits_limit} bits); simplify it"
        )


_REAL_OF_REAL = (sympy.exp, sympy.sin, sympy.cos, sympy.tanh, Abs)


def _surely_real(expr: sympy.Expr) -> bool:
    """A structural proof that ``expr`` is real (every symbol here is real), or False if there is none.

    Asked first because SymPy's own answer can be slow: it decides whether tanh(a) is real by
    reducing im(a) modulo pi, which took a second for an argument holding exp(9999).
    """
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_Symbol or node.is_Rational or isinstance(node, sympy.NumberSymbol):
            continue
        if node.is_Add or node.is_Mul or isinstance(node, _REAL_OF_REAL):
            stack.extend(node.args)
        elif node.is_Pow and node.exp.is_Integer:
            stack.append(node.base)
        else:
            return False
    return True


def _complex_part(expr: sympy.Expr) -> sympy.Expr | None:
    """A function or root inside ``expr`` whose own argument may not be real, if there is one.

    Every such part was built under _check_may_be_complex, so the realness queries here are on
    arguments without nesting of their own, and quick.
    """
    stack = [expr]
    while stack:
        node = stack.pop()
        if node.is_Atom:
            continue
        if isinstance(node, sympy.Function) or (node.is_Pow and not node.exp.is_Integer):
            if any(arg.is_extended_real is not True for arg in node.args):
                return node
        stack.extend(node.args)
    return None


def _short(expr: sympy.Expr, limit: int = 40) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expansion_size(expr: sympy.Expr, cap: int, opaque: int = 1, inside: bool = True) -> int:
    """About how many terms multiplying ``expr`` out makes before like terms are collected, or
    ``cap + 1`` if more.

    A function or a non-integer power counts as ``opaque`` terms (2 where it is split into a real and
    an imaginary part); with ``inside`` its arguments are measured too, as ``expand`` works there.
    """
    if expr.is_Atom:
        return 1
    if expr.is_Add:
        return min(cap + 1, sum(expansion_size(arg, cap, opaque, inside) for arg in expr.args))
    if expr.is_Mul:
        total = 1
        for arg in expr.args:
            total = min(cap + 1, total * expansion_size(arg, cap, opaque, inside))
        return total
    if expr.is_Pow and expr.exp.is_Integer:
        # A sum of k terms to the power n has C(n + k - 1, n) terms (1/s is expanded like s).
        k, n = expansion_size(expr.base, cap, opaque, inside), abs(int(expr.exp))
        terms = 1
        for i in range(1, n + 1):
            terms = terms * (k + i - 1) // i
            if terms > cap:
                return cap + 1
        return terms
    if inside and any(expansion_size(arg, cap, opaque, inside) > cap for arg in expr.args):
        return cap + 1
    return opaque


def _is_negative_constant(expr: sympy.Expr) -> bool:
    if expr.is_Rational:
        return bool(expr < 0)
    # Constants that reach here have bounded size (see _check_function_argument), so SymPy's
    # numerical sign test is quick.
    return bool(expr.is_number) and expr.is_extended_negative is True


_LOG2_E = 1.4426950408889634


def _check_function_argument(name: str, argument: sympy.Expr, ctx: _Context) -> None:
    """Bound the size of a constant before SymPy evaluates a function of it.

    SymPy decides signs of constants numerically, which for sin(c) or abs(c) needs as many bits
    of precision as c has digits: abs(sin(c) - 1) took over a minute for c near e**300000.
    """
    bound = ctx.limits.max_exp_argument
    if name in ("exp", "sigmoid"):
        if _magnitude_exceeds(argument, bound):
            raise ctx.error(
                f"the argument of {name} is too large (limit {bound} in absolute value)"
            )
    elif _log2_magnitude(argument) > bound * _LOG2_E + 64:  # slack: the estimate rounds up
        raise ctx.error(
            f"the argument of {name} is too large (limit exp({bound}) in absolute value)"
        )


def _float_value(constant: sympy.Expr) -> sympy.Float | None:
    value = constant.evalf(5)
    return value if value.is_Float else None


def _log2_magnitude(constant: sympy.Expr) -> float:
    """About log2|constant|, erring high when evaluation loses all precision; inf if unknown."""
    if constant.is_Rational:
        return float(abs(constant.p).bit_length() - constant.q.bit_length())
    value = _float_value(constant)
    if value is None:
        return float("inf")
    _, mantissa, exponent, bit_count = value._mpf_
    if mantissa == 0:
        # mpmath's zero is (0, 0, 0, 0); its infinities and nan also have a zero mantissa.
        return float("-inf") if exponent == 0 and bit_count == 0 else float("inf")
    return float(exponent + bit_count)


def _magnitude_exceeds(constant: sympy.Expr, bound: int) -> bool:
    """Whether |constant| > bound (True when that cannot be told)."""
    if constant.is_Rational:
        return bool(abs(constant) > bound)
    value = _float_value(constant)
    return value is None or bool(abs(value) > bound)


_NOT_FINITE_REAL = {
    S.ComplexInfinity: "division by zero",
    S.NaN: "undefined result, such as 0/0",
    S.Infinity: "infinite result",
    S.NegativeInfinity: "infinite result",
    S.ImaginaryUnit: "not a real number",
}


def _checked(expr: sympy.Expr, ctx: _Context) -> sympy.Expr:
    """Refuse ``expr`` if SymPy's evaluation produced I, zoo, oo, nan, or numbers too large.

    Runs after every construction step, because a later step can hide a bad value (1/(1/0) is 0).
    Subexpressions already checked are skipped, so the total work stays linear.
    """
    limits = ctx.limits
    stack = [expr]
    while stack:
        node = stack.pop()
        if node in ctx.clean:
            continue
        ctx.clean.add(node)
        if node.is_Atom:
            if node in _NOT_FINITE_REAL:
                raise ctx.not_real(_NOT_FINITE_REAL[node])
            if node.is_Rational and rational_bits(node) > limits.max_number_bits:
                raise ctx.error(
                    f"a number in the result would have {rational_bits(node)} bits "
                    f"(limit {limits.max_number_bits})"
                )
            continue
        # SymPy merges exp(a)**n into exp(n*a); the merged argument needs the same bound.
        if isinstance(node, sympy.exp) and node.args[0].is_number:
            _check_function_argument("exp", node.args[0], ctx)
        elif node.is_Pow and node.exp.is_Rational:
            # (x**100)**100 is x**10000: bound what SymPy combines, or forty nested powers could
            # hand later code x**(10**80).
            combined = limits.max_exponent**2
            if max(abs(node.exp.p), node.exp.q) > combined:
                raise ctx.error(
                    f"exponent {_describe(node.exp)} is too large after combining powers "
                    f"(limit {combined})"
                )
        elif node.is_Pow and node.exp.is_number:
            if _magnitude_exceeds(node.exp, limits.max_exp_argument):
                raise ctx.error(
                    f"exponent is too large (limit {limits.max_exp_argument} in absolute value)"
                )
        stack.extend(node.args)
    return expr


# --------------------------------------------------------------------------------------------------
# Public entry points


def parse_expression(
    text: str,
    field: str,
    *,
    names: Collection[str] | None = None,
    numbers_only: bool = False,
    student: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> sympy.Expr:
    """Turn ``text`` into an exact SymPy expression, or raise :class:`ParseError`.

    ``field`` names the input in messages (``--model 1``). With ``names`` given only those names
    are allowed; ``numbers_only`` allows none. ``student`` accepts the lenient answer grammar:
    implicit products (``2x``), Unicode operators (``−``, ``×``, ``²``) and LaTeX (``\\frac{1}{2}``).
    Decimals are exact (``0.1`` is 1/10). Results are finite and real; anything else, and any input
    beyond ``limits``, is refused with a one-line message saying how to fix it.
    """
    text = _check_length(text, field, limits.max_length)
    ctx = _Context(
        field=field,
        text=text,
        names=None if names is None else frozenset(names),
        numbers_only=numbers_only,
        student=student,
        limits=limits,
    )
    if student:
        source, origin = _student_source(ctx)
        tokens = _insert_implicit_products(_tokenize(source, origin, ctx), ctx)
    else:
        tokens = _tokenize(text, None, ctx)
    _check_structure(tokens, ctx)
    tree = _parse_python(_assemble(tokens, ctx), ctx)
    try:
        return _build(tree, ctx, 1)
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError):
        # SymPy's own evaluation gave up (e.g. a sign it cannot decide); say so in one line.
        raise ctx.error("could not evaluate this expression exactly; simplify it") from None


_FUNCTION_NAMES = {sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos", sympy.tanh: "tanh",
                   Abs: "abs"}


def substitute(expr: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr], field: str, *,
               limits: Limits = DEFAULT_LIMITS) -> sympy.Expr:
    """``expr`` with ``values`` put in for its symbols, rebuilt bottom-up through the parser's checks.

    A plain ``xreplace`` lets SymPy evaluate whatever the values make: ``2**w`` at w = 10**9, or
    exp(exp(exp(a))) at a = 3 (whose sign SymPy then computes to half a billion digits), would run
    for hours. Here every power and function is built as parsing builds it, so such a value is
    refused with a :class:`ParseError` naming ``field``, and the result is finite and real.
    """
    ctx = _Context(field=field, text="", names=None, numbers_only=False, student=False, limits=limits)
    built: dict[sympy.Basic, sympy.Expr] = {}

    def build(node: sympy.Basic) -> sympy.Expr:
        if node in values:
            return values[node]
        if node.is_Atom:
            return node
        if node in built:
            return built[node]
        args = [build(arg) for arg in node.args]
        if node.is_Add:
            out = _checked(Add(*args), ctx)
        elif node.is_Mul:
            out = _checked(Mul(*args), ctx)
        elif node.is_Pow:
            out = _power(args[0], args[1], ctx)
        elif node.func in _FUNCTION_NAMES:
            out = _apply_function(_FUNCTION_NAMES[node.func], args[0], ctx)
        elif node.func is sympy.sign:  # the derivative of abs
            if args[0].is_number:
                _check_function_argument("sign", args[0], ctx)
            out = _checked(sympy.sign(args[0]), ctx)
        else:  # nothing else comes out of the parser
            raise ctx.error(f"cannot evaluate {node.func.__name__} safely")
        built[node] = out
        return out

    try:
        return build(expr)
    except (ArithmeticError, ValueError, TypeError, RecursionError, MemoryError):
        raise ctx.error("could not evaluate the model exactly there; simplify it") from None


def parse_number(text: str, field: str, *, limits: Limits = DEFAULT_LIMITS) -> sympy.Expr:
    """Parse an exact real constant such as ``0.1``, ``1/3``, ``2^-4`` or ``sqrt(2)/2``."""
    value = parse_expression(text, field, numbers_only=True, limits=limits)
    if value.is_extended_real is False:
        raise ParseError(field, "not a real number")
    return value


def split_assignment(text: str, field: str) -> tuple[str, str]:
    """Split ``"w1 = 2.4"`` into ``("w1", "2.4")``; the value is left for the caller to parse."""
    text = _check_length(text, field, DEFAULT_LIMITS.max_length)
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not equals:
        raise ParseError(field, f"{_EXAMPLE_ASSIGNMENT}; found no '=' in '{quote(text)}'")
    if "=" in value:
        raise ParseError(field, f"{_EXAMPLE_ASSIGNMENT}, with a single '='")
    if not name:
        raise ParseError(field, f"missing the name before '='; {_EXAMPLE_ASSIGNMENT}")
    if not value:
        raise ParseError(field, f"missing the value after '{quote(name)}='; {_EXAMPLE_ASSIGNMENT}")
    _check_assigned_name(name, field)
    return name, value


def _check_assigned_name(name: str, field: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise ParseError(
            field,
            f"'{quote(name)}' is not a valid name; names start with a letter and contain only "
            "letters, digits and '_'",
        )
    if name in _KEYWORDS:
        raise ParseError(field, f"'{name}' is a Python keyword and cannot be used as a name; use another name, "
                         f"e.g. {name[:3]}1")
    if name in FUNCTIONS:
        raise ParseError(field, f"'{name}' is a function and cannot be used as a name")
    if name in _RESERVED:
        raise ParseError(field, _reserved_message(name))
    if len(name) > DEFAULT_LIMITS.max_name_length:
        raise ParseError(
            field,
            f"name '{quote(name, 20)}' is too long "
            f"(limit {DEFAULT_LIMITS.max_name_length} characters)",
        )


def parse_assignments(text: str, field: str) -> dict[str, sympy.Expr]:
    """Parse ``"x=7, y=10"`` into ``{"x": 7, "y": 10}`` (exact numbers, in the order given)."""
    text = _check_length(text, field, DEFAULT_LIMITS.max_length)
    if not text.strip():
        raise ParseError(field, "empty list; expected NAME=VALUE pairs, e.g. x=7, y=10")
    result: dict[str, sympy.Expr] = {}
    for position, item in enumerate(text.split(","), start=1):
        if not item.strip():
            raise ParseError(
                field,
                f"entry {position} of the list is empty; expected NAME=VALUE pairs separated by "
                "commas, e.g. x=7, y=10",
            )
        name, value = split_assignment(item, field)
        if name in result:
            raise ParseError(field, f"{name} given twice")
        try:
            result[name] = parse_number(value, field)
        except ParseError as error:
            raise ParseError(field, f"{name}: {error.message}") from None
    return result
