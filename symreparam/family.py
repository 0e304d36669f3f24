"""Exercise families: what is drawn at random, the problem built from it, constraints and questions.

A family is a TOML file in ``exercises/`` (schema in the README). Loading checks every key and
refuses a bad file with one line naming the file and the key. Drawing is reproducible: variant
``ident`` of seed ``seed`` uses its own ``random.Random`` seeded from the family name, the seed, the
ident and the attempt number, never the global generator.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from symreparam.errors import SymreparamError
from symreparam.parse import parse_number

CATEGORICAL = ("loss", "steps")  # problem fields that a draw may choose, but that are not numbers
_FAMILY_KEYS = ("name", "title", "summary", "draw", "problem", "constraints", "questions", "fixed", "templates")
_PROBLEM_KEYS = ("models", "init", "data", "lr", "steps", "loss", "queries")
_CONSTRAINT_KEYS = ("nonzero", "positive", "different", "less", "max_denominator", "max_digits", "nice")
_TEMPLATE_FILES = {"sheet": "sheet.tex", "key": "key.tex", "sheet_md": "sheet.md", "key_md": "key.md"}
_TEMPLATE_KEYS = tuple(_TEMPLATE_FILES)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


class FamilyError(SymreparamError):
    """A family file that cannot be used, or a family that cannot produce valid variants."""


@dataclass(frozen=True)
class Draw:
    """One randomly drawn quantity: whole numbers in [low, high] minus ``exclude``, or one of ``choices``."""

    name: str
    low: int = 0
    high: int = 0
    exclude: tuple[int, ...] = ()
    choices: tuple[str, ...] = ()  # exact numbers as text ("1/10"), or categorical values ("mse")

    @property
    def categorical(self) -> bool:
        """Whether the draw selects a problem setting (loss, steps) rather than a number."""
        return self.name in CATEGORICAL

    def sample(self, rng: random.Random) -> str:
        """One value, as exact text."""
        if self.choices:
            return rng.choice(self.choices)
        while True:
            value = rng.randint(self.low, self.high)
            if value not in self.exclude:
                return str(value)


@dataclass(frozen=True)
class Question:
    """One asked quantity: its id, the prompt (LaTeX) and the answer key it is graded against."""

    id: str
    ask: str
    answer: str
    credit: tuple[tuple[str, float], ...] = ()  # partial credit by misconception name


@dataclass(frozen=True)
class Constraints:
    """What makes a variant worth setting (see the README)."""

    nonzero: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    different: tuple[tuple[str, str], ...] = ()
    less: tuple[tuple[str, str], ...] = ()
    max_denominator: int = 1000
    max_digits: int = 8
    nice: tuple[str, ...] = ()  # further answer keys held to the size limits besides the asked ones


@dataclass(frozen=True)
class Family:
    """A validated exercise family."""

    name: str
    title: str
    summary: str
    path: Path
    digest: str  # sha256 of the file
    draws: tuple[Draw, ...]
    problem: Mapping
    constraints: Constraints
    questions: tuple[Question, ...]
    fixed: Mapping[str, Mapping[str, str]]
    templates: Mapping[str, str]  # only those the file names; see template_candidates

    def template_candidates(self, key: str) -> tuple[str, ...]:
        """Template names to try for ``key`` (sheet, key, sheet_md, key_md), first match wins.

        A template the family file names must exist; otherwise the family's own folder is tried, then
        the shared ``base/`` templates, so a new family works before it has templates of its own.
        """
        if key in self.templates:
            return (self.templates[key],)
        file = _TEMPLATE_FILES[key]
        return (f"{self.name}/{file}", f"base/{file}")

    @property
    def constants(self) -> tuple[str, ...]:
        """Names of the numeric draws (symbols of the one-off derivation)."""
        return tuple(d.name for d in self.draws if not d.categorical)

    def rng(self, seed: int | str, ident: str, attempt: int) -> random.Random:
        """The generator of one attempt at one variant; independent of every other variant."""
        return random.Random(f"{self.name}|{seed}|{ident}|{attempt}")

    def draw(self, seed: int | str, ident: str, attempt: int) -> dict[str, str]:
        """Drawn values (exact text) for one attempt at one variant."""
        rng = self.rng(seed, ident, attempt)
        return {d.name: d.sample(rng) for d in self.draws}


def bundled_dir() -> Path:
    """The folder of the bundled families."""
    from symreparam.resources import bundled

    return bundled("exercises")


def find(name_or_path: str, folder: Path | None = None, field: str = "FAMILY") -> Path:
    """The file of a family given by name (searched in ``folder``, then the bundled ones) or by path;
    ``field`` names the argument in errors."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        if not candidate.is_file():
            raise FamilyError(f"{field} {candidate}", "no such family file")
        return candidate
    folders = ([folder] if folder is not None else []) + [bundled_dir()]
    for f in folders:
        path = f / f"{name_or_path}.toml"
        if path.is_file():
            return path
    known = ", ".join(sorted(p.stem for f in folders for p in Path(f).glob("*.toml")))
    raise FamilyError(field, f"unknown family {name_or_path!r}; known: {known} (see `symreparam list`)")


def available(folder: Path | None = None) -> list[Path]:
    """Family files: those of ``folder`` first, then the bundled ones not overridden by name."""
    seen: dict[str, Path] = {}
    for f in ([folder] if folder is not None else []) + [bundled_dir()]:
        for path in sorted(Path(f).glob("*.toml")):
            seen.setdefault(path.stem, path)
    return list(seen.values())


def load(path: Path) -> Family:
    """Read and validate a family file; every refusal names the file and the key."""
    import tomllib

    from symreparam.files import read_text

    label = path.name
    text = read_text(path, str(path), "family file")
    raw = text.encode("utf-8")
    try:
        doc = tomllib.loads(text, parse_float=str)
    except tomllib.TOMLDecodeError as exc:
        raise FamilyError(label, f"not valid TOML: {exc}") from None
    except (RecursionError, ValueError) as exc:
        raise FamilyError(label, f"not usable TOML: {str(exc)[:80] or 'nested too deeply'}") from None
    _known(doc, _FAMILY_KEYS, label)
    name = _text(doc, "name", label)
    if name != path.stem:
        raise FamilyError(f"{label}: name", f"is {name!r} but must match the file name {path.stem!r}")
    draws = tuple(_draw(k, v, f"{label}: draw.{k}") for k, v in _table(doc, "draw", label).items())
    problem = _table(doc, "problem", label)
    _known(problem, _PROBLEM_KEYS, f"{label}: problem")
    for key in ("models", "init", "data"):
        if key not in problem:
            raise FamilyError(f"{label}: problem.{key}", "is missing")
    constraints = _constraints(doc.get("constraints", {}), f"{label}: constraints")
    questions = tuple(_question(q, f"{label}: questions[{i}]") for i, q in enumerate(doc.get("questions", []), 1))
    if not questions:
        raise FamilyError(f"{label}: questions", "a family needs at least one [[questions]] entry")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise FamilyError(f"{label}: questions", "question ids must be unique")
    fixed = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in _table(doc, "fixed", label).items()}
    names = {d.name for d in draws}
    for fixed_name, values in fixed.items():
        missing = sorted(names - set(values))
        extra = sorted(set(values) - names)
        if missing or extra:
            raise FamilyError(f"{label}: fixed.{fixed_name}",
                              f"must give exactly the drawn names; missing {missing}, unknown {extra}")
    templates = {str(k): str(v) for k, v in _table(doc, "templates", label).items()}
    _known(templates, _TEMPLATE_KEYS, f"{label}: templates")
    return Family(
        name=name,
        title=_text(doc, "title", label),
        summary=_text(doc, "summary", label),
        path=path,
        digest=hashlib.sha256(raw).hexdigest(),
        draws=draws,
        problem=problem,
        constraints=constraints,
        questions=questions,
        fixed=fixed,
        templates=templates,
    )


def _known(doc: Mapping, keys: tuple[str, ...], label: str) -> None:
    for key in doc:
        if key not in keys:
            raise FamilyError(f"{label}: {key}", f"unknown key; expected one of: {', '.join(keys)}")


def _table(doc: Mapping, key: str, label: str) -> Mapping:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise FamilyError(f"{label}: {key}", "expected a table")
    return value


def _text(doc: Mapping, key: str, label: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FamilyError(f"{label}: {key}", "expected a non-empty string")
    _printable(value, f"{label}: {key}")
    return value.strip()


def _printable(value: str, field: str) -> None:
    """Text that goes into documents (titles, prompts) may hold no control character."""
    from symreparam.printing import unprintable

    bad = unprintable(value)
    if bad:
        raise FamilyError(field, f"holds the control character {bad}, which no document can carry; remove it")


def _draw(name: str, spec, label: str) -> Draw:
    if not _NAME.fullmatch(name):
        raise FamilyError(label, "is not a valid name; use letters, digits and _")
    if not isinstance(spec, Mapping) or len(spec) == 0:
        raise FamilyError(label, "expected { integers = [low, high] } or { choice = [...] }")
    if "choice" in spec:
        _known(spec, ("choice",), label)
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            raise FamilyError(f"{label}.choice", "expected a non-empty list")
        values = tuple(str(c) for c in choices)
        if name not in CATEGORICAL:
            for i, value in enumerate(values, 1):
                parse_number(value, f"{label}.choice[{i}]")
        return Draw(name, choices=values)
    _known(spec, ("integers", "exclude"), label)
    bounds = spec.get("integers")
    if (not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int) for b in bounds)
            or bounds[0] > bounds[1]):
        raise FamilyError(f"{label}.integers", "expected [low, high], whole numbers with low <= high")
    if max(abs(b) for b in bounds) > 10**6:
        raise FamilyError(f"{label}.integers", "keep the bounds between -1000000 and 1000000")
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, int) for e in exclude):
        raise FamilyError(f"{label}.exclude", "expected a list of whole numbers")
    if all(v in exclude for v in range(bounds[0], bounds[1] + 1)):
        raise FamilyError(f"{label}.exclude", "excludes every value in the range")
    if name in CATEGORICAL:
        raise FamilyError(label, f"{name} is chosen from a list: use {{ choice = [...] }}")
    return Draw(name, bounds[0], bounds[1], tuple(exclude))


def _pairs(value, label: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                              for p in value):
        raise FamilyError(label, 'expected a list of pairs of answer keys, e.g. [["f1.w1.1", "f2.w3.1"]]')
    return tuple((a, b) for a, b in value)


def _keys(value, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise FamilyError(label, "expected a list of answer keys")
    return tuple(value)


def _constraints(doc, label: str) -> Constraints:
    if not isinstance(doc, Mapping):
        raise FamilyError(label, "expected a table")
    _known(doc, _CONSTRAINT_KEYS, label)
    for key in ("max_denominator", "max_digits"):
        if key in doc and (not isinstance(doc[key], int) or isinstance(doc[key], bool) or doc[key] < 1):
            raise FamilyError(f"{label}.{key}", "expected a positive whole number")
    return Constraints(
        nonzero=_keys(doc.get("nonzero", []), f"{label}.nonzero"),
        positive=_keys(doc.get("positive", []), f"{label}.positive"),
        different=_pairs(doc.get("different", []), f"{label}.different"),
        less=_pairs(doc.get("less", []), f"{label}.less"),
        max_denominator=doc.get("max_denominator", 1000),
        max_digits=doc.get("max_digits", 8),
        nice=_keys(doc.get("nice", []), f"{label}.nice"),
    )


def _question(doc, label: str) -> Question:
    if not isinstance(doc, Mapping):
        raise FamilyError(label, "expected a table with id, ask and answer")
    _known(doc, ("id", "ask", "answer", "credit"), label)
    for key in ("id", "ask", "answer"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise FamilyError(f"{label}.{key}", "expected a non-empty string")
        _printable(doc[key], f"{label}.{key}")
    if not _NAME.fullmatch(doc["id"]):
        raise FamilyError(f"{label}.id", "use letters, digits and _")
    credit = doc.get("credit", {})
    grades = [_grade(v) for v in credit.values()] if isinstance(credit, Mapping) else [None]
    if any(g is None for g in grades):
        raise FamilyError(f"{label}.credit", "expected { misconception = fraction between 0 and 1 }, "
                          "e.g. { half-mse = 0.5 }")
    return Question(doc["id"], doc["ask"].strip(), doc["answer"].strip(),
                    tuple((str(k), g) for k, g in zip(credit, grades)))


def _grade(value) -> float | None:
    """A credit fraction: TOML hands floats over as text (family files are read with parse_float=str),
    so a number is a whole number or a decimal literal, never a quoted word."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, str) and not re.fullmatch(r"[+-]?(\d[\d_]*)?(\.\d[\d_]*)?([eE][+-]?\d+)?", value):
        return None
    try:
        grade = float(value)
    except ValueError:
        return None
    return grade if 0 <= grade <= 1 else None
