"""The one exception family of symreparam.

Every error a user can cause is a :class:`SymreparamError` whose message names the field at fault
and what to do about it; ``cli.py`` prints it as a single ``Error: ...`` line.
"""

from __future__ import annotations


class SymreparamError(Exception):
    """Base class of every error symreparam raises on purpose.

    ``field`` names the piece of input at fault (``--model 2``, ``problem.toml: lr``); ``str(err)``
    is the whole one-line message, field included.
    """

    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self):
        # picklable across processes (the generator renders in forked workers)
        return self.__class__, (self.field, self.message)


class ParseError(SymreparamError):
    """A user string that the safe parser refuses."""


class NotRealError(ParseError):
    """The parser's refusal of a value that is not a finite real number (1/0, log(-1), sqrt(-2))."""


class ProblemError(SymreparamError):
    """Input that parses but does not make a well-posed problem."""


class VerificationError(SymreparamError):
    """The independent floating-point check disagrees with an exact result."""

    exit_code = 3
