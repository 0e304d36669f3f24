"""``symreparam generate``: seeded homework variants, each solved exactly and checked before it is written.

The pipeline per run: load the family; derive it once per choice of its categorical draws
(:mod:`symreparam.program`); draw all variants; evaluate every answer of every variant at once; reject
and redraw (bounded) the variants that divide by zero, break a constraint or fail the float64 check;
render sheets, keys, booklets and JSON from templates; compile PDFs if asked; hand everything back as
bytes with a manifest. Writing to disk is :func:`write_output`'s job (:mod:`symreparam.folders`),
atomically and without overwriting unless told to.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import os
import re
import math
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from symreparam import __version__
from symreparam.errors import SymreparamError
from symreparam.family import Family, FamilyError
from symreparam.folders import write_folder
from symreparam.printing import tex_escape
from symreparam.program import (Batch, Program, derive_program, evaluate_program, join_batches, undefined,
                                verify_batch)
from symreparam.verify import TOLERANCE

FORMATS = ("tex", "pdf", "md", "json", "moodle")
MAX_ATTEMPTS = 200
MAX_VARIANTS = 100_000
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Request:
    """What to generate."""

    family: Family
    variants: int = 1
    seed: str = "0"
    formats: tuple[str, ...] = ("tex", "json")
    roster: tuple[tuple[str, str], ...] = ()  # (id, name) per student
    fixed: str | None = None  # a fixed variant of the family instead of random draws
    templates: Path | None = None


@dataclass(frozen=True)
class Accepted:
    """A variant that passed every check: where its exact answers live."""

    index: int
    ident: str
    name: str | None
    attempts: int
    batch: Batch
    position: int
    max_rel_error: float


@dataclass(frozen=True)
class Output:
    """Everything a run produces, as bytes by relative path, plus its manifest."""

    files: Mapping[str, bytes]
    manifest: Mapping
    variants: tuple[Accepted, ...] = field(default=())

    @property
    def redraws(self) -> int:
        """How many draws were rejected in all."""
        return sum(v.attempts - 1 for v in self.variants)


def parse_formats(text: str) -> tuple[str, ...]:
    """``tex,pdf`` -> ("tex", "pdf"), refusing unknown names."""
    items = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in items if f not in FORMATS]
    if unknown or not items:
        raise SymreparamError("--format", f"unknown format {', '.join(unknown) or '(none)'}; use a comma-separated "
                              f"list of: {', '.join(FORMATS)}")
    return items


def read_roster(path: Path) -> tuple[tuple[str, str], ...]:
    """A CSV with columns id,name (header required); ids must be unique and non-empty."""
    from symreparam.files import read_text
    from symreparam.printing import unprintable

    text = read_text(path, f"--roster {path}", "CSV file with columns id,name")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise SymreparamError("--roster", f"{path}: not valid CSV ({exc})") from None
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["id", "name"]:
        raise SymreparamError("--roster", f"{path}: the first line must be the header id,name")
    out, seen = [], set()
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip():
            raise SymreparamError("--roster", f"{path} line {line}: expected id,name")
        ident, name = row[0].strip(), row[1].strip()
        if len(ident) > 64 or len(name) > 200:
            raise SymreparamError("--roster", f"{path} line {line}: id or name too long")
        bad = unprintable(ident + name, one_line=True)
        if bad:
            raise SymreparamError("--roster", f"{path} line {line}: the control character {bad} cannot go into a "
                                  "document; remove it")
        if ident in seen:
            raise SymreparamError("--roster", f"{path} line {line}: id {ident!r} appears twice")
        seen.add(ident)
        out.append((ident, name))
    if not out:
        raise SymreparamError("--roster", f"{path}: no students listed")
    return tuple(out)


def _slug(ident: str) -> str:
    """A file-name-safe form of a variant id or student id."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ident).strip("._") or "x"
    return slug[:64]


def _slots(request: Request) -> list[tuple[int, str, str | None]]:
    if request.fixed is not None:
        return [(1, request.fixed, None)]
    if request.roster:
        return [(i, ident, name) for i, (ident, name) in enumerate(request.roster, 1)]
    if not 1 <= request.variants <= MAX_VARIANTS:
        raise SymreparamError("--variants", f"expected a number from 1 to {MAX_VARIANTS}, got {request.variants}")
    # The id (and so the draw) of variant i is "i" however many variants are asked for; only file names
    # are zero-padded, so that they sort.
    return [(i, str(i), None) for i in range(1, request.variants + 1)]


def _file_ids(request: Request, accepted: Sequence[Accepted]) -> list[str]:
    """The file-name part of each variant: its number zero-padded, or the student's id made file-safe.

    Two roster ids that become the same file name (``a b`` and ``a_b``) are refused: one student's
    files would silently replace the other's.
    """
    if request.fixed is None and not request.roster:
        width = len(str(request.variants))
        return [a.ident.zfill(width) for a in accepted]
    ids = [_slug(a.ident) for a in accepted]
    seen: dict[str, str] = {}
    for a, slug in zip(accepted, ids):
        if slug in seen:
            raise SymreparamError("--roster", f"the ids {seen[slug]!r} and {a.ident!r} give the same file name "
                                  f"{slug!r}; make them differ in letters or digits")
        seen[slug] = a.ident
    return ids


def _check_keys(family: Family, program: Program) -> None:
    """Every answer key a family names must exist (a typo would otherwise fail every variant)."""
    known = set(program.answers) | {d.name for d in family.draws} | {"lr"}
    c = family.constraints
    for q in family.questions:  # a question asks for a result; a drawn value is on the sheet already
        if q.answer not in program.answers and q.answer in known:
            raise FamilyError(f"{family.path.name}: questions.{q.id}.answer",
                              f"{q.answer!r} is a drawn value, not a result to work out; ask for an answer key")
    named = [("questions", q.answer) for q in family.questions] + [("constraints.nonzero", k) for k in c.nonzero]
    named += [("constraints.positive", k) for k in c.positive]
    named += [("constraints.nice", k) for k in c.nice]
    named += [("constraints.different", k) for pair in c.different for k in pair]
    named += [("constraints.less", k) for pair in c.less for k in pair]
    from symreparam.malrules import RULES_BY_NAME
    from symreparam.moodle import moodle_fraction

    for q in family.questions:
        for rule, fraction in q.credit:
            if rule not in RULES_BY_NAME:
                raise FamilyError(f"{family.path.name}: questions.{q.id}.credit",
                                  f"unknown mistake {rule!r}; known: {', '.join(RULES_BY_NAME)}")
            try:
                moodle_fraction(fraction)
            except SymreparamError as exc:
                raise FamilyError(f"{family.path.name}: questions.{q.id}.credit.{rule}", exc.message) from None
    for where, key in named:
        if key not in known:
            sample = ", ".join(sorted(program.answers)[:6])
            raise FamilyError(f"{family.path.name}: {where}", f"unknown answer key {key!r} (keys look like: {sample}, ...)")


def _values(batch: Batch, key: str):
    """Numerators and denominators of an answer key or a drawn name, for every variant of a batch."""
    if key in batch.values:
        return batch.values[key].num, batch.values[key].den
    if key == "lr":
        return batch.lr.num, batch.lr.den
    return batch.points.nums[key], batch.points.dens[key]


def _validity(family: Family, batch: Batch) -> list[str | None]:
    """Per variant: None if it meets the family's constraints, else why not (the float64 check follows
    in :func:`_float_errors`, once every slot has a variant)."""
    c = family.constraints
    reasons: list[str | None] = [None] * batch.size
    bad_undefined = undefined(batch)

    def fail(mask, why):
        for v in np.flatnonzero(mask):
            if reasons[v] is None:
                reasons[v] = why

    # a drawn learning rate is read while it is still a name, so its sign is known only per variant
    num, _ = _values(batch, "lr")
    fail(num <= 0, "the learning rate is not positive")
    fail(bad_undefined, "some answer is undefined (a division by zero)")
    for key in c.nonzero:
        num, _ = _values(batch, key)
        fail(num == 0, f"{key} is zero")
    for key in c.positive:
        num, _ = _values(batch, key)
        fail(num <= 0, f"{key} is not positive")
    for a, b in c.different:
        (na, da), (nb, db) = _values(batch, a), _values(batch, b)
        fail((na == nb) & (da == db), f"{a} equals {b}")
    for a, b in c.less:
        (na, da), (nb, db) = _values(batch, a), _values(batch, b)
        mask = [not (int(na[v]) * int(db[v]) < int(nb[v]) * int(da[v])) for v in range(batch.size)]
        fail(np.array(mask, dtype=bool), f"{a} is not less than {b}")
    limit = 10 ** c.max_digits
    for key in dict.fromkeys([q.answer for q in family.questions] + list(c.nice)):
        num, den = _values(batch, key)
        if num.dtype == object:
            big = np.array([abs(int(n)) >= limit or int(d) > c.max_denominator for n, d in zip(num, den)], dtype=bool)
        else:
            big = (np.abs(num) >= limit) | (den > c.max_denominator)
        fail(big, f"{key} is not a nice number")
    _no_ambiguous_keys(family, batch, fail)
    return reasons


def _float_errors(chosen: Mapping[int, tuple[int, Batch, int]]) -> dict[int, float]:
    """The float64 discrepancy of every chosen variant (slot -> (attempt, batch, position)).

    The variants of every round are checked together, in one vectorised pass per program: a pass
    costs milliseconds whatever its size, and each variant's figures do not depend on its batch."""
    # per program, per batch (batches compare by identity): the (slot, position) pairs chosen from it
    by_program: dict[int, dict[Batch, list[tuple[int, int]]]] = {}
    for index, (_, batch, position) in chosen.items():
        by_program.setdefault(id(batch.program), {}).setdefault(batch, []).append((index, position))
    errors: dict[int, float] = {}
    for parts in by_program.values():
        found = verify_batch(join_batches([(batch, [p for _, p in pairs]) for batch, pairs in parts.items()]))
        errors.update(zip([index for pairs in parts.values() for index, _ in pairs], found.tolist()))
    return errors


def _no_ambiguous_keys(family: Family, batch: Batch, fail) -> None:
    """Refuse variants where a typical mistake gives an asked answer within the tolerance of the right
    one: a wrong method must never earn full marks, here or in a Moodle quiz."""
    from symreparam.malrules import bands_overlap
    from symreparam.answers import mistake_key

    asked = {q.answer for q in family.questions}
    for mistake in batch.program.mistakes:
        for key in mistake.answers:
            if key not in asked:
                continue
            wrong = batch.values[mistake_key(mistake.id, key)]
            right = batch.values[key]
            with np.errstate(all="ignore"):
                close = bands_overlap(wrong.floats(), right.floats())
            fail(batch.shown(mistake, key) & close,
                 f"the mistake '{mistake.title}' gives {key} too close to the right answer for decimals to tell")


def solve_variants(request: Request, progress: Progress | None = None) -> tuple[Accepted, ...]:
    """Draw, evaluate, check and redraw until every slot holds a valid variant (or explain why not).

    A slot's variant is its first valid attempt (attempt k uses the generator of family, seed, id and k),
    so it does not depend on the other slots. After a first round, a slot still without a variant tries
    several attempts at once, which costs far fewer rounds of evaluation for strict families.
    """
    family = request.family
    if request.fixed is not None and request.fixed not in family.fixed:
        known = ", ".join(sorted(family.fixed)) or "none"
        raise FamilyError("--fixed", f"{family.name} has no fixed variant {request.fixed!r}; it has: {known}")
    slots = _slots(request)
    slot_of = {slot[0]: slot for slot in slots}
    programs: dict[tuple, Program] = {}
    tried = {index: 0 for index, _, _ in slots}
    pending = list(slots)
    accepted: dict[int, Accepted] = {}
    chosen: dict[int, tuple[int, Batch, int]] = {}  # slot -> (attempt, batch, position), not yet checked in float64
    failures: Counter[str] = Counter()
    counted = {index: 0 for index, _, _ in slots}  # the last attempt whose failure is in ``failures``
    shown = 0  # slots reported done
    # only the number of steps changes the shape of a derivation; a drawn loss is a symbol
    categorical = [d.name for d in family.draws if d.categorical and d.name != "loss"]
    width = 1
    while pending:
        candidates = []  # (slot, attempt, drawn values)
        for slot in pending:
            index, ident, _ = slot
            if tried[index] >= MAX_ATTEMPTS:
                common = ", ".join(f"{why} ({n}x)" for why, n in failures.most_common(3))
                raise FamilyError(family.path.name, f"no valid variant for {ident} in {MAX_ATTEMPTS} draws; the "
                                  f"constraints may be too strict. Most common reasons: {common}")
            for attempt in range(tried[index] + 1, min(tried[index] + width, MAX_ATTEMPTS) + 1):
                values = dict(family.fixed[request.fixed]) if request.fixed is not None \
                    else family.draw(request.seed, ident, attempt)
                candidates.append((slot, attempt, values))
            tried[index] = min(tried[index] + width, MAX_ATTEMPTS)
        groups: dict[tuple, list[int]] = {}
        for i, (_, _, values) in enumerate(candidates):
            groups.setdefault(tuple(values[name] for name in categorical), []).append(i)
        found: dict[int, tuple[int, Batch, int]] = {}
        for choice, members in groups.items():
            if choice not in programs:
                program = derive_program(family, dict(zip(categorical, choice)))
                _check_keys(family, program)
                programs[choice] = program
            batch = evaluate_program(programs[choice], [candidates[i][2] for i in members])
            for pos, (i, why) in enumerate(zip(members, _validity(family, batch))):
                (index, _, _), attempt, _ = candidates[i]
                if why is None:
                    if index not in found or attempt < found[index][0]:
                        found[index] = (attempt, batch, pos)
                elif attempt > counted[index]:  # an attempt drawn again after a float64 failure counts once
                    counted[index] = attempt
                    _failed(request, failures, why)
        chosen.update(found)
        pending = [slot for slot in pending if slot[0] not in found]
        # Enough attempts per slot that most slots succeed next round, not so many that a lenient
        # family evaluates several times the draws it needs: from this round's rate of valid draws.
        rate = len(found) / max(len(candidates), 1)
        width = 8 if rate <= 0 else min(8, max(1, math.ceil(math.log(0.05) / math.log(max(1e-9, 1 - rate)))))
        if not pending:
            for index, error in _float_errors(chosen).items():
                attempt, batch, pos = chosen.pop(index)
                _, ident, name = slot_of[index]
                if error <= TOLERANCE:
                    accepted[index] = Accepted(index, ident, name, attempt, batch, pos, error)
                else:  # the slot draws again from the attempt after this one, as if it had failed in its round
                    _failed(request, failures, "the float64 check disagrees")
                    tried[index] = attempt
                    pending.append(slot_of[index])
            pending.sort()
        if progress:
            shown = max(shown, len(accepted) + len(chosen))
            progress("solving", shown, len(slots))
    return tuple(accepted[index] for index, _, _ in slots)


def _failed(request: Request, failures: Counter[str], why: str) -> None:
    """Count a rejected draw; a fixed variant has no other draw to take, so it is refused."""
    failures[why] += 1
    if request.fixed is not None:
        raise FamilyError("--fixed", f"the fixed variant {request.fixed!r} is not valid: {why}")


class _Templates:
    """One Jinja environment's templates for a run: the family's sheet and key, and the document wrapper."""

    def __init__(self, family: Family, env) -> None:
        from symreparam.render import load_template

        self.env = env
        self.family = family
        self._cache: dict[str, object] = {}
        self._load = load_template
        self._wrapper: tuple[str, str] | None = None

    def render(self, key: str, **context) -> str:
        from symreparam.render import render_template

        if key not in self._cache:
            names = ("document.tex",) if key == "document" else self.family.template_candidates(key)
            field = "--templates" if key == "document" or key not in self.family.templates \
                else f"{self.family.path.name}: templates.{key}"
            self._cache[key] = self._load(self.env, names, field)
        return render_template(self._cache[key], f"template for {key}", **context)

    def document(self, body: str) -> str:
        """``body`` inside the document template (rendered once, then reused around every body)."""
        if self._wrapper is None:
            marker = "\x00symreparam-body\x00"
            head, sep, tail = self.render("document", body=marker).partition(marker)
            if not sep:
                raise SymreparamError("--templates", "document.tex must contain \\VAR{body} exactly once")
            self._wrapper = head, tail
        head, tail = self._wrapper
        return head + body + tail

    @property
    def sources(self) -> dict[str, str]:
        """Name and source of every template used so far, extended and included ones too."""
        return dict(self.env.loader.used)


def _templates(request: Request, kind: str) -> _Templates:
    from symreparam.render import environment

    env = environment(kind, request.templates)
    env.globals.update(texescape=tex_escape)
    return _Templates(request.family, env)


def _template_digest(*used: _Templates | None) -> str:
    """sha256 over the templates a run actually rendered with, by name."""
    sources: dict[str, str] = {}
    for templates in used:
        if templates is not None:
            sources.update(templates.sources)
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return digest.hexdigest()


def _meta(request: Request, accepted: Accepted) -> SimpleNamespace:
    # attributes rather than a dict: Jinja resolves ``variant.id`` by getattr first
    return SimpleNamespace(index=accepted.index, id=accepted.ident, name=accepted.name, seed=request.seed,
                           fixed=request.fixed is not None,
                           attempts=accepted.attempts, max_rel_error=accepted.max_rel_error,
                           questions=request.family.questions)


# one answer key over a batch's variants: numerators, and denominators (None when all are 1)
_Cell = tuple[list[int], "list[int] | None"]


@dataclass(frozen=True)
class _BatchTables:
    """What every variant of one batch needs for its record, worked out once per batch.

    The answers, and the typical mistakes' answers, are thousands of plain ``n/d`` strings with
    nothing to escape, so they are written into JSON by one %-formatting per variant instead of the
    encoder. Which mistakes apply differs between variants, but only in a few patterns. Values are
    written as text per variant, when its record is made: only for variants that were accepted, and
    in whichever process renders them."""

    answers_json: tuple[str, list[_Cell]]  # the answers object with a %s per value, and the values that fill it
    mistake_patterns: list[tuple[str, list[_Cell]]]  # the same for each pattern of shown mistakes
    pattern_of: list[int]  # per variant: its pattern
    asked: tuple[tuple[str, ...], list[_Cell]]  # the answer keys questions ask for, and their values


_TABLES: "weakref.WeakKeyDictionary[Batch, _BatchTables]" = weakref.WeakKeyDictionary()


def _json_key(key: str) -> str:
    return json.dumps(key).replace("%", "%%")


def _tables(batch: Batch) -> _BatchTables:
    from symreparam.answers import is_mistake_key, mistake_key

    cached = _TABLES.get(batch)
    if cached is not None:
        return cached
    keys = sorted(batch.values)
    column = {}  # answer key -> its values
    for key in keys:
        nums, dens = batch.columns[key]
        column[key] = (nums, dens if (batch.values[key].den != 1).any() else None)
    answers = [key for key in keys if not is_mistake_key(key)]
    answers_json = ("{" + ", ".join(_json_key(key) + ': "%s"' for key in answers) + "}", [column[k] for k in answers])
    slots = []  # (mistake id, answer key, column), in the program's order
    shown = []  # per slot and variant: the mistake applies and its answer is defined
    for mistake in batch.program.mistakes:
        for key in mistake.answers:
            slots.append((mistake.id, key, column[mistake_key(mistake.id, key)]))
            shown.append(batch.shown(mistake, key))
    patterns, pattern_of = [("{}", [])], [0] * batch.size
    if slots:
        unique, inverse = np.unique(np.stack(shown, axis=1), axis=0, return_inverse=True)
        patterns = []
        for row in unique.tolist():
            objects: dict[str, list[str]] = {}
            columns = []
            for (mistake_id, key, col), on in zip(slots, row):
                if on:
                    objects.setdefault(mistake_id, []).append(_json_key(key) + ': "%s"')
                    columns.append(col)
            body = ", ".join(_json_key(mid) + ": {" + ", ".join(parts) + "}" for mid, parts in objects.items())
            patterns.append(("{" + body + "}", columns))
        pattern_of = inverse.reshape(-1).tolist()
    asked_keys = tuple(q.answer for q in batch.program.family.questions if q.answer in column)
    asked = (asked_keys, [column[key] for key in asked_keys])
    tables = _BatchTables(answers_json, patterns, pattern_of, asked)
    _TABLES[batch] = tables
    return tables


def _answers(accepted: Accepted) -> tuple[str, str, dict[str, str]]:
    """The variant's exact answers and, per applicable typical mistake, the asked answers it gives,
    both as JSON objects; and the text of any asked answer by key."""
    v = accepted.position
    tables = _tables(accepted.batch)
    template, cells = tables.answers_json
    answers = template % _texts(cells, v)
    template, cells = tables.mistake_patterns[tables.pattern_of[v]]
    mistakes = template % _texts(cells, v)
    keys, cells = tables.asked
    return answers, mistakes, dict(zip(keys, _texts(cells, v)))


def _texts(cells: Sequence[_Cell], v: int) -> tuple[str, ...]:
    """Variant ``v``'s values of ``cells`` as exact text that SymPy reads back (``12/5``, ``-3``)."""
    # printing.text_rational, inlined: well over 100 values per variant
    return tuple([str(n[v]) if d is None or d[v] == 1 else f"{n[v]}/{d[v]}" for n, d in cells])


def render_variant(request: Request, accepted: Accepted, tex=None, md=None, moodle: bool = False) -> dict[str, str]:
    """The sheet and key bodies of one variant in the requested formats: {"sheet.tex": ..., ...}.

    With ``moodle`` the Markdown leaves out the headings and the list of questions (a quiz asks them
    one by one)."""
    from symreparam.views import VariantView

    view = VariantView(accepted.batch, accepted.position, _meta(request, accepted))
    context = {"family": request.family, "variant": view.meta, "v": view, "questions": request.family.questions,
               "n": view.n, "p": view.p, "f": view.f, "sign": view.sign, "models": view.models, "moodle": moodle}
    out = {}
    if tex is not None:
        out["sheet.tex"] = tex.render("sheet", **context)
        out["key.tex"] = tex.render("key", **context)
    if md is not None:
        out["sheet.md"] = md.render("sheet_md", **context)
        out["key.md"] = md.render("key_md", **context)
    return out


def generate(request: Request, progress: Progress | None = None) -> Output:
    """Produce every file of a run in memory (PDFs compiled in private temporary folders)."""
    # Thousands of short-lived strings and views: the cyclic collector would only rescan the
    # long-lived answer tables over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(request, progress)
    finally:
        if gc_was_enabled:
            gc.enable()


@dataclass(frozen=True)
class _Rendered:
    """Everything one variant contributes: its sheet and key bodies, and its record as JSON."""

    bodies: Mapping[str, str]  # sheet.tex, key.tex, sheet.md, key.md as asked
    record: str


def _render_one(request: Request, a: Accepted, slug: str, tex, md) -> _Rendered:
    """One variant's documents and record."""
    formats = request.formats
    family = request.family
    rendered = render_variant(request, a, tex, md)
    own = []
    for kind in ("sheet", "key"):
        if tex is not None:
            own += _tex_names(f"{kind}-{slug}", formats)
        if md is not None:
            own.append(f"{kind}-{slug}.md")
    answers_json, mistakes, texts = _answers(a)
    drawn = a.batch.drawn[a.position]
    if "json" in formats:
        own.append(f"variant-{slug}.json")
    # The record's keys in sorted order, the pre-encoded answers and mistakes spliced in at theirs.
    before = json.dumps({
        "attempts": a.attempts,
        "drawn": dict(sorted(drawn.items())),
        "files": sorted(own),
        "id": a.ident,
        "index": a.index,
        "max_rel_error": a.max_rel_error,
    })
    after = json.dumps({
        "name": a.name,
        "questions": dict(sorted((q.id, texts[q.answer]) for q in family.questions)),
        "seed": request.seed,
    })
    return _Rendered(rendered, f'{{"answers": {answers_json}, {before[1:-1]}, "mistakes": {mistakes}, {after[1:]}')


# Rendering is pure, so large runs share it among forked worker processes (same bytes out). Forking
# and sending the documents back cost about as much as they save below ~1000 variants (measured on 2
# cores: no gain in time at 300 or 600 variants, 10-20% more CPU), so smaller runs stay in one process
# unless SYMREPARAM_WORKERS asks otherwise.
PARALLEL_MIN = 1000
CHUNK = 25  # variants taken at a time from the shared counter (whoever takes the last keeps the others waiting)
_WORK: tuple | None = None  # what forked workers render from: inherited, never pickled


LOCK_SECONDS = 30  # the counter's lock is held for microseconds; longer means its holder died


def _take(counter, total: int) -> int:
    """The first index of the next chunk (``total`` when none is left), advancing the shared counter."""
    lock = counter.get_lock()
    if not lock.acquire(timeout=LOCK_SECONDS):
        raise SymreparamError("generate", "a worker process rendering the variants stopped while holding a "
                              "lock; run again with SYMREPARAM_WORKERS=1 to render in one process")
    try:
        start = counter.value
        counter.value = min(start + CHUNK, total)
    finally:
        lock.release()
    return start


def _stop(counter, total: int) -> None:
    """Leave no chunk for anyone: every process stops at its next one."""
    lock = counter.get_lock()
    held = lock.acquire(timeout=LOCK_SECONDS)
    counter.value = total  # without the lock too, if its holder died: nothing else can change it then
    if held:
        lock.release()


def _render_chunks(request: Request, accepted, slugs, tex, md, counter, progress=None) -> dict[int, list]:
    """Render chunks of variants, taking the next one from ``counter`` (shared by every process) until
    none is left: a faster process simply takes more. Returns {first index: rendered variants}."""
    done = {}
    while (start := _take(counter, len(accepted))) < len(accepted):
        done[start] = [_render_one(request, accepted[i], slugs[i], tex, md)
                       for i in range(start, min(start + CHUNK, len(accepted)))]
        if progress:
            progress("rendering", min(counter.value, len(accepted)), len(accepted))
    return done


def _render_share(task: int) -> tuple[SymreparamError | None, str]:
    """A worker's part: chunks until none is left, written to a scratch file whose name it returns.

    Through the pool's pipe the documents would stall: the process reading it renders too and holds
    the GIL, so megabytes would trickle through a 64 KB pipe one switch interval at a time. The file
    is named for the task, not the process: one process may run two tasks."""
    import pickle

    request, accepted, slugs, tex, md, scratch, counter = _WORK
    try:
        done = _render_chunks(request, accepted, slugs, tex, md, counter)
    except SymreparamError as exc:
        _stop(counter, len(accepted))
        return exc, ""
    except BaseException:
        _stop(counter, len(accepted))
        raise
    used = {}
    for templates in (tex, md):
        if templates is not None:
            used.update(templates.sources)
    path = os.path.join(scratch, f"share-{task}.pickle")
    try:
        with open(path, "wb") as handle:
            pickle.dump((done, used), handle, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        return _scratch_error(exc), ""
    return None, path


def _scratch_error(exc: OSError) -> SymreparamError:
    return SymreparamError("generate", f"cannot keep the rendered variants in {tempfile.gettempdir()} "
                           f"({exc.strerror or exc}); free some space there, point TMPDIR elsewhere, or run "
                           "with SYMREPARAM_WORKERS=1")


def _workers(count: int) -> int:
    """How many processes share the rendering of ``count`` variants (1: this one alone)."""
    import multiprocessing
    import sys

    import threading

    wanted = os.environ.get("SYMREPARAM_WORKERS", "")
    if wanted.isdigit() and int(wanted) > 0:
        cores, least = min(int(wanted), 16), 2 * int(wanted)
    else:
        cores, least = min(os.cpu_count() or 1, 4), PARALLEL_MIN
    # fork copies one thread: with others running (a notebook, a BLAS pool) a lock they hold would
    # never be released in the child
    if count < least or cores < 2 or not sys.platform.startswith("linux") \
            or "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 1
    return cores


def _render_all(request: Request, accepted, slugs, tex, md, progress: Progress | None) -> list[_Rendered]:
    """Every variant's documents and record, in order."""
    global _WORK
    workers = _workers(len(accepted))
    # the first variant here: it loads (and records) every template the workers will use
    out = [_render_one(request, accepted[0], slugs[0], tex, md)]
    if workers == 1:
        for count in range(2, len(accepted) + 1):
            out.append(_render_one(request, accepted[count - 1], slugs[count - 1], tex, md))
            if progress and (count % 50 == 0 or count == len(accepted)):
                progress("rendering", count, len(accepted))
        return out
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # What every variant of a batch shares is worked out here, once, rather than again in each worker.
    for batch in {id(a.batch): a.batch for a in accepted}.values():
        _tables(batch)
        batch.columns
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 1)  # the first variant is done
    # This process renders alongside workers - 1 forked ones: on two cores one fork, not two. The
    # executor (unlike multiprocessing.Pool) reports a worker that died, instead of waiting forever.
    try:
        with tempfile.TemporaryDirectory(prefix="symreparam-") as scratch:
            _WORK = (request, accepted, slugs, tex, md, scratch, counter)  # before the fork: inherited
            with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
                try:
                    shares = [pool.submit(_render_share, i) for i in range(workers - 1)]
                    done = _render_chunks(request, accepted, slugs, tex, md, counter, progress)
                    for share in shares:
                        error, path = share.result()
                        if error is not None:
                            raise error
                        with open(path, "rb") as handle:
                            theirs, used = pickle.load(handle)
                        done.update(theirs)
                        for templates in (tex, md):
                            if templates is not None:
                                templates.env.loader.used.update(used)
                except BaseException:
                    _stop(counter, len(accepted))  # so that leaving the pool does not wait for the rest
                    raise
        for start in sorted(done):
            out.extend(done[start])
    except BrokenProcessPool:
        raise SymreparamError("generate", "a worker process rendering the variants died (out of memory?); "
                              "run again with SYMREPARAM_WORKERS=1 to render in one process") from None
    except OSError as exc:  # the scratch folder could not be made or read
        raise _scratch_error(exc) from None
    finally:
        _WORK = None
    if len(out) != len(accepted):  # every chunk is taken exactly once; anything else is a bug
        raise RuntimeError(f"rendered {len(out)} of {len(accepted)} variants")
    return out


def _generate(request: Request, progress: Progress | None) -> Output:
    import jinja2
    import numpy
    import sympy

    formats = request.formats
    accepted = solve_variants(request, progress)
    tex = _templates(request, "tex") if {"tex", "pdf"} & set(formats) else None
    md = _templates(request, "md") if "md" in formats else None
    quiz_md = (md or _templates(request, "md")) if "moodle" in formats else None
    quiz_xml = _templates(request, "xml") if "moodle" in formats else None
    files: dict[str, bytes] = {}
    bodies: dict[str, list[str]] = {"sheet.tex": [], "key.tex": [], "sheet.md": [], "key.md": []}
    records = []
    documents: dict[str, str] = {}
    slugs = _file_ids(request, accepted)
    for slug, done in zip(slugs, _render_all(request, accepted, slugs, tex, md, progress)):
        for kind in ("sheet", "key"):
            if tex is not None:
                body = done.bodies[f"{kind}.tex"]
                bodies[f"{kind}.tex"].append(body)
                _tex_outputs(f"{kind}-{slug}", tex.document(body), formats, files, documents)
            if md is not None:
                body = done.bodies[f"{kind}.md"]
                bodies[f"{kind}.md"].append(body)
                files[f"{kind}-{slug}.md"] = body.encode()
        if "json" in formats:
            files[f"variant-{slug}.json"] = (done.record + "\n").encode()
        records.append(done.record)
    family = request.family
    booklet_files = []
    for kind in ("sheet", "key"):
        if tex is not None:
            booklet = tex.document("\n\\clearpage\n".join(bodies[f"{kind}.tex"]))
            booklet_files += _tex_outputs(f"{kind}s", booklet, formats, files, documents)
        if md is not None:
            files[f"{kind}s.md"] = "\n\n---\n\n".join(bodies[f"{kind}.md"]).encode()
            booklet_files.append(f"{kind}s.md")
    if quiz_md is not None:
        from symreparam.moodle import quiz

        files["quiz.xml"] = quiz(request, accepted, quiz_md, quiz_xml)
        booklet_files.append("quiz.xml")
    if documents:
        files.update(_compile_all(documents, progress))
    manifest = {
        "symreparam": __version__,
        "versions": {"sympy": sympy.__version__, "numpy": numpy.__version__, "jinja2": jinja2.__version__},
        "family": family.name,
        "family_sha256": family.digest,
        "templates_sha256": _template_digest(tex, md, quiz_md, quiz_xml),
        "seed": request.seed,
        "fixed": request.fixed,
        "formats": list(formats),
        "variants_requested": len(accepted),
        "redraws": sum(a.attempts - 1 for a in accepted),
        "tolerance": TOLERANCE,
        "booklets": sorted(booklet_files),
    }
    # Compact JSON (the C encoder is an order of magnitude faster than the indenting one); the
    # variants, already encoded, go last.
    head = json.dumps(manifest, sort_keys=True)
    files["manifest.json"] = (head[:-1] + ', "variants": [' + ", ".join(records) + "]}\n").encode()
    manifest["variants"] = [json.loads(r) for r in records] if len(records) <= 100 else None
    return Output(files, manifest, accepted)


def _tex_names(stem: str, formats) -> list[str]:
    """The files a LaTeX document becomes: .tex and/or .pdf, as ``formats`` asks."""
    return [f"{stem}.{ext}" for ext in ("tex", "pdf") if ext in formats]


def _tex_outputs(stem: str, doc: str, formats, files: dict, documents: dict) -> list[str]:
    """Queue a LaTeX document as .tex and/or for compilation to .pdf; the file names it will have."""
    if "tex" in formats:
        files[f"{stem}.tex"] = doc.encode()
    if "pdf" in formats:
        documents[stem] = doc
    return _tex_names(stem, formats)


def _compile_all(documents: Mapping[str, str], progress: Progress | None) -> dict[str, bytes]:
    """Compile LaTeX documents to PDF, two at a time (pdflatex is a separate process)."""
    from concurrent.futures import ThreadPoolExecutor

    from symreparam.pdf import compile_pdf, pdflatex_path

    pdflatex_path()
    out: dict[str, bytes] = {}
    names = sorted(documents)
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        for done, (name, pdf) in enumerate(zip(names, pool.map(lambda n: compile_pdf(documents[n], n), names)), 1):
            out[f"{name}.pdf"] = pdf
            if progress:
                progress("compiling PDFs", done, len(names))
    return out


def write_output(out_dir: Path, output: Output, force: bool = False) -> None:
    """Write a run's files into ``out_dir`` at once (see :func:`symreparam.folders.write_folder`)."""
    write_folder(out_dir, output.files, force)
