"""Checking a student's answers: right or wrong exactly, which typical mistake a wrong one comes from,
and whether it follows from the student's own earlier answer (error carried forward).

The student's text is parsed by the safe parser in its lenient answer grammar (``2x``, ``^``, Unicode
minus, LaTeX). An answer in decimal notation (whole numbers too) is taken as rounded and accepted within
:data:`RELATIVE_TOLERANCE` of the exact value, if it is nearer the right answer than any wrong method's;
one with a fraction bar must be exactly right. A :class:`Checker` analyses an exercise once and then
judges any number of answer sets; it only caches, and nothing here prints.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from symreparam.answers import Descent, answer_expressions, basis_ids, path_answers
from symreparam.errors import ParseError, SymreparamError
from symreparam.malrules import RELATIVE_TOLERANCE, Mistake, mistakes, tolerance
from symreparam.parse import expansion_size, parse_expression, quote
from symreparam.problem import Problem
from symreparam.reparam import decompose
from symreparam.solution import Analysis, analyse

MAX_ANSWERS = 200
MAX_EXPANDED_TERMS = 200  # products expand makes of one answer; a real answer has a few dozen
# An answer with a fraction bar is exact and must be exactly right; one in decimal notation (whole
# numbers included) is taken as rounded and accepted within the tolerance.
_FRACTION = re.compile(r"/|\\[dt]?frac|\u00f7")


@dataclass(frozen=True)
class Exercise:
    """What the student answers: the problem, what to call it, and its questions (id, answer key, prompt)."""

    problem: Problem
    label: str
    questions: tuple[tuple[str, str, str], ...] = ()
    solution_hint: str = "`symreparam solve` with the same problem prints it"
    # the typical mistakes that may be named (None: every rule that applies); a generated variant names
    # only those its family derived and `generate` checked to be told apart from the right answer
    mistakes: frozenset[str] | None = None


@dataclass(frozen=True)
class Target:
    """What one answer name refers to: an answer key, or a model's function after the steps."""

    name: str
    key: str | None  # an answer key; None for a function
    model: str | None  # for a function: the model's name
    prompt: str


@dataclass(frozen=True)
class Diagnosis:
    """A typical mistake that produces the student's answer, and where its path leaves the worked one."""

    id: str
    title: str
    why: str
    step: str
    where: str  # the first quantity at which the two paths differ, in words
    yours: str  # its value along the mistaken path (exact text)
    worked: str  # its value in the worked solution


@dataclass(frozen=True)
class Verdict:
    """The outcome for one answer."""

    name: str
    given: str
    correct: bool
    status: str  # "correct" | "consistent" (wrong, but follows from earlier answers) | "wrong"
    expected: str  # the exact answer (shown only when asked for)
    diagnoses: tuple[Diagnosis, ...] = ()
    consistent_with: tuple[str, ...] = ()
    exact: bool = False  # equal to the exact answer, not only within the tolerance
    note: str = ""  # why a close answer is not accepted


@dataclass(frozen=True)
class Report:
    """All verdicts on one set of answers."""

    exercise: Exercise
    verdicts: tuple[Verdict, ...]
    tolerance: float = RELATIVE_TOLERANCE
    max_rel_error: float = 0.0

    @property
    def all_correct(self) -> bool:
        """Whether every answer is right."""
        return all(v.correct for v in self.verdicts)

    @property
    def score(self) -> tuple[int, int]:
        """(right, total)."""
        return sum(v.correct for v in self.verdicts), len(self.verdicts)


_ANSWER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}(\.[A-Za-z0-9_]{1,32}){0,4}")


def split_answer(item: str) -> tuple[str, str]:
    """``"f2 = 141x + 2.2"`` -> ("f2", "141x + 2.2"); the value is parsed later, knowing the name."""
    if not isinstance(item, str) or len(item) > 2100:
        raise ParseError("--answer", "expected NAME=VALUE of at most 2100 characters, e.g. w1=2.4")
    name, equals, value = item.partition("=")
    name, value = name.strip(), value.strip()
    if not equals or not name:
        raise ParseError("--answer", f"expected NAME=VALUE, e.g. w1=2.4 or 'f2=141x+2.2'; got {quote(item)!r}")
    if not _ANSWER_NAME.fullmatch(name):
        raise ParseError("--answer", f"{quote(name)!r} is not an answer name; use e.g. w1, f2 or slope2")
    if not value:
        raise ParseError(f"--answer {name}", "the value is missing; e.g. " + f"{name}=2.4")
    return name, value


def read_answers(path) -> list[tuple[str, str]]:
    """Answers from a TOML or JSON file mapping names to values (numbers are read from their text, exactly)."""
    import json
    import tomllib
    from pathlib import Path

    from symreparam.files import read_text

    path = Path(path)
    text = read_text(path, f"--answers {path}", "TOML or JSON answer file")
    label = f"--answers {path.name}"
    doc = None
    if path.suffix.lower() != ".toml":
        try:
            doc = json.loads(text, parse_float=str, parse_int=str, object_pairs_hook=_refuse_repeats)
        except _Repeated as exc:
            raise ParseError(f"{label}: {quote(exc.args[0])}", "is given twice; keep one answer") from None
        except (ValueError, RecursionError):
            doc = None
    if doc is None:
        try:
            doc = tomllib.loads(text, parse_float=str)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
            raise ParseError(label, f"neither JSON nor TOML: {str(exc)[:120]}") from None
    if not isinstance(doc, dict) or not doc:
        raise ParseError(label, 'expected a table of answers, e.g. w1 = "12/5"')
    pairs, seen = [], set()
    for name, value in _flatten(doc):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ParseError(f"{label}: {quote(str(name))}", "expected a number or a string")
        if name in seen:  # "f1.w1.1" = 1 beside a nested f1.w1.1 = 2
            raise ParseError(f"{label}: {quote(name)}", "is given twice; keep one answer")
        seen.add(name)
        pairs.append(split_answer(f"{name}={value}"))
    return pairs


class _Repeated(ValueError):
    pass


def _refuse_repeats(items):
    # JSON allows a key twice and keeps the last: a student's first answer would vanish unseen
    doc = {}
    for key, value in items:
        if key in doc:
            raise _Repeated(key)
        doc[key] = value
    return doc


def _flatten(doc: dict, prefix: str = ""):
    """Dotted names from nested tables: TOML reads ``f2.end.slope = 15`` as {"f2": {"end": {"slope": 15}}}."""
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and name.count(".") < 4:
            yield from _flatten(value, name + ".")
        else:
            yield name, value


def reference_exercise() -> Exercise:
    """The reference exercise: the fixed variant of the first family, with its questions."""
    from symreparam import family as families

    return family_exercise(families.load(families.find("reparam-one-step")), fixed="reference")


def family_exercise(family, *, seed: str | None = None, ident: str | None = None, fixed: str | None = None) -> Exercise:
    """One variant of an exercise family, exactly as `generate` made it (its first valid draw)."""
    if fixed is not None:
        if fixed not in family.fixed:
            known = ", ".join(sorted(family.fixed)) or "none"
            raise SymreparamError("--fixed", f"{family.name} has no fixed variant {fixed!r}; it has: {known}")
        drawn = family.fixed[fixed]
        label = f"{family.name}, fixed variant {fixed!r}" if fixed != "reference" else \
            f"the reference exercise ({family.name}, fixed variant 'reference')"
    else:
        from symreparam.generate import Request, solve_variants

        if not ident or len(ident) > 64:
            raise SymreparamError("--variant", "give the variant's id as printed on the sheet, e.g. --variant 3")
        (accepted,) = solve_variants(Request(family=family, seed=str(seed), roster=((ident, ""),)))
        batch, position = accepted.batch, accepted.position
        drawn = batch.drawn[position]
        label = f"{family.name}, seed {seed}, variant {ident}"
        if re.fullmatch(r"0+[0-9]+", ident) and int(ident) > 0:
            # file names pad numbers (sheet-03.tex), sheets do not: say which one was meant
            label += f" (read as a student id; for numbered variant {int(ident)} give --variant {int(ident)})"
        named = frozenset(_family_mistakes(batch, position))
    questions = tuple((q.id, q.answer, _plain(q.ask)) for q in family.questions)
    if fixed == "reference" and family.name == "reparam-one-step":
        from symreparam.problem import reference_problem

        # the same problem (a test holds them equal), without deriving the family symbolically first
        return Exercise(reference_problem(), label, questions, "`symreparam solve` prints it")
    from symreparam.program import variant_problem

    return Exercise(variant_problem(family, drawn), label, questions, "the answer key of your variant has it",
                    mistakes=None if fixed is not None else named)


def _family_mistakes(batch, position: int) -> list[str]:
    """The typical mistakes a generated variant lists (its manifest's ``mistakes``): those of its family
    that apply with its loss and give some defined answer."""
    return [m.id for m in batch.program.mistakes if any(batch.shown(m, key)[position] for key in m.answers)]


def _plain(prompt: str) -> str:
    """A question's LaTeX prompt as plain text: \\(w_3\\) -> w3, P_{11} -> P11."""
    text = prompt.replace("\\(", "").replace("\\)", "")
    text = re.sub(r"_\{?([A-Za-z0-9]+)\}?", r"\1", text)
    return re.sub(r"\\[A-Za-z]+\s*", "", text).replace("{", "").replace("}", "")


def answer_names(exercise: Exercise) -> dict[str, Target]:
    """Every name an answer may be given under: the questions' ids, each parameter (its value after the
    last step), each model (its function after the last step)."""
    problem = exercise.problem
    steps = problem.steps
    out: dict[str, Target] = {}
    for qid, key, prompt in exercise.questions:
        out[qid] = Target(qid, key, None, prompt)
    for model in problem.models:
        for w in model.params:
            out.setdefault(w.name, Target(w.name, f"{model.name}.{w.name}.{steps}", None,
                                          f"{w.name} after {'the step' if steps == 1 else f'{steps} steps'}"))
    for model in problem.models:
        out.setdefault(model.name, Target(model.name, None, model.name,
                                          f"the function {model.name} after {'the step' if steps == 1 else f'{steps} steps'}"))
    return out


def _resolve(name: str, names: Mapping[str, Target], correct: Mapping[str, sp.Expr]) -> Target:
    if name in names:
        return names[name]
    if name in correct:
        return Target(name, name, None, name)
    listing = ", ".join(names)
    raise ParseError(f"--answer {name}", f"unknown name {name!r}; answer one of: {listing} (or an answer key such as "
                     f"{next(iter(k for k in correct if '.end.' in k), 'f1.w1.1')})")


def check_answers(exercise: Exercise, answers: Sequence[tuple[str, str]], *, verify: bool = True) -> Report:
    """Judge ``answers`` (name, text) for ``exercise``: exact equivalence, tolerance for decimals,
    typical mistakes, errors carried forward. Raises :class:`SymreparamError` for unusable input."""
    return Checker(exercise, verify=verify).check(answers)


class Checker:
    """One exercise, analysed once (its answers, its typical mistakes, their float64 check), against
    which any number of sets of answers can be judged quickly."""

    def __init__(self, exercise: Exercise, *, verify: bool = True) -> None:
        self.exercise = exercise
        problem = exercise.problem
        self.analysis = analyse(problem)
        self.correct = answer_expressions(self.analysis)
        self.names = answer_names(exercise)
        self.ids = basis_ids(self.analysis.basis)
        self.verify = verify
        # the worked solution is checked now; a mistake's answers when a diagnosis first names it
        self.error = _verify(self.analysis) if verify else 0.0
        self.mistake_errors: dict[str, float] = {}  # checked once each, when a diagnosis first names it
        self.inputs = [s.name for s in problem.data.input_symbols]
        self.lr_names = [s.name for s in problem.lr_symbols]

    def parse(self, answers: Sequence[tuple[str, str]]) -> list[tuple[Target, str, sp.Expr]]:
        """The answers' targets and exact values; one-line errors for anything unusable."""
        if not answers:
            raise SymreparamError("--answer", "give at least one answer, e.g. --answer w1=2.4")
        if len(answers) > MAX_ANSWERS:
            raise SymreparamError("--answer", f"{len(answers)} answers given; check at most {MAX_ANSWERS} at once")
        seen: set[str] = set()
        parsed = []
        for name, text in answers:
            if name in seen:
                raise SymreparamError(f"--answer {name}", "is given twice; give each answer once")
            seen.add(name)
            target = _resolve(name, self.names, self.correct)
            allowed = (self.inputs if target.model is not None else []) + self.lr_names
            value = parse_expression(text, f"--answer {target.name}", names=allowed, student=True)
            if expansion_size(value, MAX_EXPANDED_TERMS) > MAX_EXPANDED_TERMS:  # every comparison expands
                raise SymreparamError(f"--answer {target.name}", f"multiplies out to more than {MAX_EXPANDED_TERMS} "
                                      "terms; no answer here is that long, so simplify it")
            parsed.append((target, text, value))
        return parsed

    def _mistakes(self, parsed) -> tuple[Mistake, ...]:
        """Typical mistakes with their answers for what was asked, and for the steps where paths part."""
        analysis = self.analysis
        steps = analysis.problem.steps
        wanted = {f"{d.model.name}.grad.{w.name}" for d in analysis.derivations for w in d.model.params}
        wanted |= {f"{d.model.name}.{w.name}.1" for d in analysis.derivations for w in d.model.params}
        for target, _, _ in parsed:
            if target.key is not None:
                wanted.add(target.key)
            else:
                wanted |= {f"{target.model}.end.{k}" for k in self.ids}
                wanted |= {f"{target.model}.{w.name}.{steps}" for d in analysis.derivations
                           if d.model.name == target.model for w in d.model.params}
        found = mistakes(analysis, self.correct, sorted(k for k in wanted if k in self.correct))
        if self.exercise.mistakes is not None:
            found = tuple(m for m in found if m.id in self.exercise.mistakes)
        # a mistaken path that runs off to 1e308 and beyond cannot be re-computed in float64, so it is
        # never named (nobody writes such a number down by hand anyway)
        return tuple(m for m in found if all(_within_float_range(v) for v in m.answers.values()))

    def check(self, answers: Sequence[tuple[str, str]]) -> Report:
        """Judge one set of answers."""
        parsed = self.parse(answers)
        found = self._mistakes(parsed)
        # what the student's own answers imply for later ones
        own = _own_paths(self.analysis, parsed, self.ids)
        verdicts = tuple(_judge(self.analysis, self.correct, found, own, target, text, value, self.ids)
                         for target, text, value in parsed)
        named = {d.id for v in verdicts for d in v.diagnoses}
        if self.verify:
            for mistake in found:
                if mistake.id in named and mistake.id not in self.mistake_errors:
                    self.mistake_errors[mistake.id] = _verify_diagnosed(self.exercise.problem, self.analysis,
                                                                        mistake, self.correct)
        # the report's figure covers exactly what it shows: the worked solution and the mistakes it names
        error = max([self.error, *(self.mistake_errors.get(i, 0.0) for i in named)])
        return Report(self.exercise, verdicts, RELATIVE_TOLERANCE, error)


def _expected(analysis: Analysis, correct: Mapping[str, sp.Expr], target: Target) -> sp.Expr:
    if target.key is not None:
        return correct[target.key]
    return _derivation(analysis, target.model).function_final


def _derivation(analysis: Analysis, model: str):
    """The derivation of the model called ``model`` (f1, f2, ...)."""
    return next(d for d in analysis.derivations if d.model.name == model)


def _equal(a: sp.Expr, b: sp.Expr) -> bool:
    """Exact equality in any form: 4/(7 + 3*sqrt(5)) is 7 - 3*sqrt(5), (1 - 196eta^2)/(1 - 14eta) is 1 + 14eta."""
    difference = sp.expand(a - b)
    if difference == 0:
        return True
    if _provably_nonzero(difference):
        return False
    if sp.count_ops(difference) > 80:  # no student writes that; cancelling it could take seconds
        return False
    try:
        difference = sp.cancel(sp.together(difference))
        return difference == 0 or sp.expand(sp.radsimp(difference)) == 0
    except (sp.PolynomialError, ValueError, TypeError, RecursionError):
        return False


# Rational probe values, one per symbol, unlikely to be a pole or a root of anything a student writes
_PROBES = tuple(sp.Rational(p, 10_000) for p in (3183, 5772, 6931, 4142, 7321, 2361, 1414, 8862))


def _provably_nonzero(difference: sp.Expr) -> bool:
    """Whether ``difference`` is nonzero at a probe point, with 30 digits guaranteed by SymPy's evalf.

    A difference that is not zero somewhere is not zero, so most wrong answers are told apart in
    milliseconds; cancelling and rationalising them instead took seconds for sums of nested radicals.
    Inconclusive (False) at a pole, off the real line's domain, or where the value is zero."""
    symbols = sorted(difference.free_symbols, key=lambda s: s.name)
    if len(symbols) > len(_PROBES):
        return False
    try:
        value = difference.evalf(30, subs=dict(zip(symbols, _PROBES)), strict=True)
    except (sp.core.evalf.PrecisionExhausted, ValueError, TypeError, ZeroDivisionError, ArithmeticError,
            NotImplementedError, RecursionError):
        return False
    return bool(value.is_number and value.is_finite and value.is_zero is False)


def _matches(given: sp.Expr, expected: sp.Expr, decimals: bool, variables) -> bool:
    """Exactly equal; or, for an answer in decimal notation, within the tolerance term by term."""
    if _equal(given, expected):
        return True
    return decimals and _distance(given, expected, variables) <= 1


def _variables(problem: Problem):
    return tuple(problem.data.input_symbols) + tuple(problem.lr_symbols)


def _mistaken_value(analysis: Analysis, mistake: Mistake, target: Target, ids, correct) -> sp.Expr | None:
    """The mistake's value of the target (a function is rebuilt from its basis coefficients)."""
    if target.key is not None:
        return mistake.answers.get(target.key)
    d = _derivation(analysis, target.model)
    if not d.is_linear:
        steps = analysis.problem.steps
        keys = [f"{d.model.name}.{w.name}.{steps}" for w in d.model.params]
        if not any(k in mistake.answers for k in keys):
            return None
        return sp.expand(d.function_at([mistake.answers.get(k, correct[k]) for k in keys]))
    keys = [f"{target.model}.end.{k}" for k in ids]
    if not any(k in mistake.answers for k in keys):
        return None
    coefficients = [mistake.answers.get(k, correct.get(k)) for k in keys]
    if any(c is None for c in coefficients):
        return None
    return sp.expand(sp.Add(*(c * f for c, f in zip(coefficients, analysis.basis.functions))))


_STEP_WORDS = {
    "gradient": "the gradient",
    "chain rule": "the chain rule",
    "update": "the update",
    "answer": "the reported answer",
    "stability": "the stability condition",
    "reparameterisation": "the effect of the reparameterisation",
}


def _param_key(key: str | None) -> tuple[str, str, str] | None:
    """(model, parameter, step) of a parameter's answer key such as ``f2.w3.1``; None for any other key."""
    parts = (key or "").split(".")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and parts[2].isdigit() else None


def _where(analysis: Analysis, mistake: Mistake, target: Target, correct, model: str | None
           ) -> tuple[str | None, str, str, str]:
    """The first quantity at which the mistaken path differs from the worked one."""
    step = mistake.rule.step
    order = []
    names = [(d.model.name, [w.name for w in d.model.params]) for d in analysis.derivations]
    names.sort(key=lambda item: item[0] != model)  # the answer's own model first ...
    param = _param_key(target.key)
    if param is not None:  # ... and for a parameter, that parameter first
        names = [(m, sorted(ws, key=lambda w: w != param[1])) for m, ws in names]
    if step in ("gradient", "chain rule"):
        order = [f"{m}.grad.{w}" for m, ws in names for w in ws]
    elif step == "update":
        order = [f"{m}.{w}.1" for m, ws in names for w in ws]
    for key in order:
        if key in mistake.answers:
            m, kind, rest = key.split(".", 2)
            label = f"dL/d{rest}" if kind == "grad" else f"{kind} after the first step"
            return key, label + f" ({m})", sp.sstr(mistake.answers[key]), sp.sstr(correct[key])
    key = target.key
    if key is not None and key in mistake.answers:
        return key, target.name, sp.sstr(mistake.answers[key]), sp.sstr(correct[key])
    return None, target.name, "", ""


def _own_paths(analysis: Analysis, parsed, ids) -> dict[str, object]:
    """The student's final parameters and functions as they answered them, for errors carried forward."""
    problem = analysis.problem
    given = {target.key: value for target, _, value in parsed if target.key is not None}
    written_with_decimals = {target.key: _rounded(text) for target, text, _ in parsed}
    variables = _variables(problem)
    functions = {target.model: value for target, _, value in parsed if target.model is not None}
    steps = problem.steps
    changed = []
    for d in analysis.derivations:
        for j, w in enumerate(d.model.params):
            key = f"{d.model.name}.{w.name}.{steps}"
            if key in given and not given[key].free_symbols - set(problem.lr_symbols) \
                    and not _matches(given[key], d.final[j], written_with_decimals[key], variables):
                changed.append((d.model.name, w.name))

    def implied_by(wrong):
        """Answers implied when the student's wrong final parameters ``wrong`` replace the right ones."""
        paths = []
        for d in analysis.derivations:
            final = [given[f"{d.model.name}.{w.name}.{steps}"] if (d.model.name, w.name) in wrong else v
                     for w, v in zip(d.model.params, d.final)]
            paths.append(Descent(d.trajectory[:-1] + (tuple(final),), d.gradient))
        answers = path_answers(analysis, paths)
        answers.update({f"function.{d.model.name}": sp.expand(d.function_at(p.trajectory[-1]))
                        for d, p in zip(analysis.derivations, paths)})
        return answers

    if changed:
        implied = implied_by(set(changed))
        # which wrong parameters each implied answer actually depends on
        without = {source: implied_by(set(changed) - {source}) for source in changed}
    else:
        implied, without = {}, {}
    # a function the student wrote gives its own coefficients
    inputs = problem.data.input_symbols
    from_functions = {}
    for m, f in functions.items():
        parts = decompose(sp.expand(f), inputs)
        if set(parts) <= set(analysis.basis.functions):
            from_functions[m] = [parts.get(b, sp.Integer(0)) for b in analysis.basis.functions]
    return {"changed": changed, "implied": implied, "without": without, "from_functions": from_functions}


def _judge(analysis, correct, found, own, target: Target, text: str, value: sp.Expr, ids) -> Verdict:
    problem = analysis.problem
    expected = _expected(analysis, correct, target)
    decimals = _rounded(text)
    variables = _variables(problem)
    shown = sp.sstr(expected)
    if _equal(value, expected):
        return Verdict(target.name, text, True, "correct", shown, exact=True)
    model = target.model or (target.key.split(".")[0] if target.key and not target.key.startswith("ratio.")
                             else (target.key.split(".")[1] if target.key else None))
    # The typical mistakes this answer is the answer of: exactly, or (for decimals) within the tolerance;
    # only the nearest explanations are given, so an answer is never blamed on a method it merely resembles.
    wrongs = [(mistake, wrong) for mistake in found
              if (wrong := _mistaken_value(analysis, mistake, target, ids, correct)) is not None]
    matching = []
    for mistake, wrong in wrongs:
        if _equal(value, wrong):
            matching.append((-1.0, mistake))
        elif decimals and (d := _distance(value, wrong, variables)) <= 1:
            matching.append((d, mistake))
    nearest = min((d for d, _ in matching), default=None)
    rivals = [(title, _distance(value, other, variables))
              for title, other in _rivals(analysis, correct, wrongs, target, expected)] if decimals else []
    # an explanation that is no mistake (not stepping at all) nearer than every matching mistake
    unexplained = nearest is not None and any(d < nearest for _, d in rivals)
    note = ""
    if decimals and (right := _distance(value, expected, variables)) <= 1:
        # within the tolerance of the right answer; a wrong method (or not stepping) as near or nearer wins
        as_near = sorted((d, title) for title, d in rivals if d <= right)
        if not as_near:
            return Verdict(target.name, text, True, "correct", shown)
        if nearest is None or nearest >= right or unexplained:
            # no mistake is strictly the nearest: the answer cannot be told apart, it is not diagnosed
            note = f"too imprecise to tell from {as_near[0][1]}: give it exactly, or with more digits"
            matching = []
    elif unexplained:
        matching = []
    diagnoses = []
    for d, mistake in matching:
        if d != nearest:
            continue
        key, where, yours, worked = _where(analysis, mistake, target, correct, model)
        diagnoses.append(Diagnosis(mistake.id, mistake.title, mistake.why, _STEP_WORDS.get(mistake.rule.step,
                                   mistake.rule.step), where, yours, worked))
    consistent = _carried_forward(analysis, own, target, value, decimals, variables, ids)
    status = "consistent" if consistent else "wrong"
    return Verdict(target.name, text, False, status, shown, tuple(diagnoses), consistent, note=note)


def _within_float_range(value: sp.Expr) -> bool:
    """Whether a value (or every coefficient of a polynomial in the rate) is comfortably below 1e300."""
    from symreparam.numeric import exact_float

    for part in (value.as_coefficients_dict().values() if value.free_symbols else (value,)):
        if not part.free_symbols and not abs(exact_float(part)) < 1e300:
            return False
    return True


def _rounded(text: str) -> bool:
    return not _FRACTION.search(text)


def _distance(given: sp.Expr, other: sp.Expr, variables) -> float:
    """How far apart two answers are, in tolerances: the largest, term by term, of |a - b| / tolerance(b)
    (infinite when they differ in a term that is not a number)."""
    a, b = _float_terms(given, tuple(variables)), _float_terms(other, tuple(variables))
    worst = 0.0
    for term in set(a) | set(b):
        fa, fb = a.get(term, 0.0), b.get(term, 0.0)
        if isinstance(fa, sp.Expr) or isinstance(fb, sp.Expr):  # a term with a symbol left in it
            if not (isinstance(fa, sp.Expr) and isinstance(fb, sp.Expr) and sp.expand(fa - fb) == 0):
                return float("inf")
            continue
        if not (math.isfinite(fa) and math.isfinite(fb)):  # inf - inf would be nan, and nan compares as small
            return float("inf")
        worst = max(worst, abs(fa - fb) / float(tolerance(fb)))
    return worst


@lru_cache(maxsize=512)
def _float_terms(expr: sp.Expr, variables: tuple) -> dict:
    """The coefficient of every term of an answer as a float (kept exact where it holds a symbol).

    Cached: one student answer is compared with the right one and with every mistake's, and turning a
    tower of powers into a float is the slow part."""
    out = {}
    for term, coefficient in decompose(sp.expand(expr), variables).items():
        if coefficient.free_symbols:
            out[term] = coefficient
            continue
        try:
            out[term] = float(coefficient)
        except (TypeError, ValueError, OverflowError):
            out[term] = coefficient
    return out


def _rivals(analysis: Analysis, correct, wrongs, target: Target, expected) -> list[tuple[str, sp.Expr]]:
    """What a rounded answer must be closer to the right answer than: every typical mistake's value of
    it (``wrongs``: (mistake, value) pairs), and the value before the steps (not stepping at all)."""
    out = [(f"the answer of a typical mistake ({mistake.title})", wrong) for mistake, wrong in wrongs]
    key = target.key
    before = None
    if target.model is not None:
        before = _derivation(analysis, target.model).function_initial
    elif key is not None:
        parts = key.split(".")
        param = _param_key(key)
        if param is not None and int(param[2]) > 0:
            before = correct.get(f"{param[0]}.{param[1]}.0")
        elif len(parts) == 3 and parts[1] == "end":
            before = correct.get(f"{parts[0]}.start.{parts[2]}")
    if before is not None and sp.expand(before - expected) != 0:
        out.append(("the value before the step", before))
    return out


def _carried_forward(analysis, own, target: Target, value, decimals, variables, ids) -> tuple[str, ...]:
    """The earlier answers this wrong answer follows from, if it follows from them exactly."""
    changed = own["changed"]
    if _param_key(target.key) is not None:
        return ()  # a parameter is an earlier answer itself
    sources = []
    if target.model is not None:
        involved = {target.model}
    elif target.key.startswith("ratio."):
        involved = {analysis.derivations[0].model.name, target.key.split(".")[1]}
    else:
        involved = {target.key.split(".")[0]}
    key = f"function.{target.model}" if target.model is not None else target.key
    implied = own["implied"].get(key)
    if implied is None and not own["from_functions"]:
        return ()
    relevant = [source for source in changed if source[0] in involved
                and key in own["without"][source] and sp.expand(own["without"][source][key] - implied) != 0]
    if relevant and _matches(value, implied, decimals, variables):
        sources = [w for _, w in relevant]
    if not sources and target.key is not None:
        parts = target.key.split(".")
        if len(parts) == 3 and parts[1] in ("end", "change") and parts[0] in own["from_functions"]:
            m, kind, k = parts
            coefficient = own["from_functions"][m][ids.index(k)]
            start = own["implied"].get(f"{m}.start.{k}", sp.Integer(0))
            implied = coefficient if kind == "end" else sp.expand(coefficient - start)
            if _matches(value, implied, decimals, variables):
                sources = [m]
    return tuple(sources)


def _verify(analysis: Analysis) -> float:
    """Check the worked solution in float64, as `solve` does (VerificationError on any disagreement)."""
    from symreparam.solution import verify_analysis

    return verify_analysis(analysis).max_rel_error


def _verify_diagnosed(problem: Problem, analysis: Analysis, mistake: Mistake, exact: Mapping) -> float:
    """Re-compute in float64 the answers of a mistake a report names (VerificationError if they disagree).

    With a symbolic learning rate, each sample rate is put in exactly and checked like a number."""
    from symreparam.verify import LR_SAMPLES

    symbols = problem.lr_symbols
    if not symbols:
        return _verify_mistake(problem, analysis, mistake, exact)
    from dataclasses import replace

    worst = 0.0
    for value in LR_SAMPLES:
        at = {s: value for s in symbols}
        concrete = replace(problem, lr=problem.lr.xreplace(at))
        worst = max(worst, _verify_mistake(
            concrete, analyse(concrete),
            replace(mistake, answers={k: sp.expand(v.xreplace(at)) for k, v in mistake.answers.items()}),
            {k: sp.expand(v.xreplace(at)) for k, v in exact.items()}))
    return worst


def _verify_mistake(problem: Problem, analysis: Analysis, mistake: Mistake, exact: Mapping) -> float:
    from symreparam.derive import loss_factor
    from symreparam.errors import VerificationError
    from symreparam.malverify import ModelFloats, content_floats, mistake_error
    from symreparam.numeric import compile_model, exact_float
    from symreparam.verify import TOLERANCE, Case, quiet

    @quiet
    def run() -> float:
        inputs = tuple(problem.data.input_symbols)
        x = np.array([[[exact_float(v) for v in row] for row in problem.data.inputs]], dtype=float).reshape(
            1, problem.data.size, len(inputs))
        y = np.array([[exact_float(t) for t in problem.data.targets]])
        queries = np.array([[[exact_float(v) for v in q] for q in problem.queries]], dtype=float).reshape(
            1, len(problem.queries), len(inputs))
        ids = basis_ids(analysis.basis)
        models = []
        for d, reparam in zip(analysis.derivations, analysis.reparams):
            case = Case(model=compile_model(d.model.expression, inputs, d.model.params), x=x, y=y,
                        w0=np.array([[exact_float(w) for w in d.initial]]),
                        lr=np.array([exact_float(problem.lr)]), cprime=np.array([exact_float(loss_factor(problem))]),
                        probes=x, linear=d.is_linear)
            models.append(ModelFloats(
                name=d.model.name, params=tuple(w.name for w in d.model.params), case=case, n_inputs=len(inputs),
                queries=queries,
                A=None if reparam is None else np.array([[[exact_float(e) for e in row] for row in reparam.A.tolist()]]),
                b=None if reparam is None else np.array([[exact_float(e) for e in reparam.b]]),
                contents=content_floats(d, problem, (), np.zeros((1, 0))), steps=problem.steps, linear=d.is_linear))
        correct = {k: np.array([exact_float(v)]) for k, v in exact.items() if not v.free_symbols}
        recipe = mistake.rule.recipe
        factor = np.array([float(recipe.factor_at(problem.data.size)) if recipe else 1.0])
        answers = {k: np.array([exact_float(v)]) for k, v in mistake.answers.items()}
        err = float(mistake_error(mistake.rule, dict(mistake.words), answers, models, correct, ids, factor)[0])
        if not err <= TOLERANCE:
            raise VerificationError("verification", f"the float64 re-computation of the mistake "
                                    f"'{mistake.title}' disagrees with its exact answers (relative error "
                                    f"{err:.3g}); the diagnosis is withheld, please report it")
        return err

    return run()
