"""A Moodle XML quiz of a generated set of variants (``generate --format moodle``).

Per variant and asked quantity, one ``numerical`` question: the right answer at 100%, each typical
mistake's answer with its own feedback (and partial credit where the family grants it), a catch-all
``*`` with a hint, and the worked solution as general feedback. Maths is written \\( ... \\) for
MathJax. Values are decimals (Moodle grades numbers); each answer carries the relative tolerance that
``symreparam check`` uses, and the generator has already refused variants in which a mistake's value
falls within the right answer's tolerance, so no wrong method earns full marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, localcontext
from fractions import Fraction

from symreparam.errors import SymreparamError
from symreparam.malrules import RELATIVE_TOLERANCE, tolerance
from symreparam.mdhtml import inline, to_html

# Grades Moodle accepts for an answer, as fractions of the question's mark (its importer refuses others).
MOODLE_FRACTIONS = (1.0, 0.9, 0.8333333, 0.8, 0.75, 0.7, 0.6666667, 0.6, 0.5, 0.4, 0.3333333, 0.3, 0.25, 0.2,
                    0.1666667, 0.1428571, 0.125, 0.1111111, 0.1, 0.05, 0.0)


def moodle_fraction(value: float) -> str:
    """A credit as Moodle's percentage text, if Moodle offers that grade (``0.5`` -> ``50``)."""
    for allowed in MOODLE_FRACTIONS:
        if abs(value - allowed) < 1e-6:
            percent = Decimal(str(allowed)) * 100
            return format(percent.normalize(), "f")
    offered = ", ".join(f"{f:g}" for f in MOODLE_FRACTIONS[1:-1])
    raise SymreparamError("credit", f"{value:g} is not a grade Moodle offers; use one of {offered}")


def decimal_text(value: Fraction, digits: int = 12) -> str:
    """An exact rational as a plain decimal (no exponent), exact when it terminates within ``digits``
    significant digits, else rounded to them."""
    with localcontext() as ctx:
        ctx.prec = digits
        number = Decimal(value.numerator) / Decimal(value.denominator)
    return format(number.normalize(), "f") if number != 0 else "0"


def tolerance_text(value: Fraction, at_most: float | None = None) -> str:
    """The absolute tolerance Moodle needs for the relative one symreparam uses (narrowed to ``at_most``)."""
    tol = float(tolerance(float(value)))
    if at_most is not None:
        tol = min(tol, at_most)
    return format(Decimal(f"{tol:.6g}").normalize(), "f")


def _idnumber(*parts: str) -> str:
    """A question's id number, unique and at most 100 characters (Moodle's limit): long ones keep a
    digest of the whole instead of being cut, which could make two the same."""
    import hashlib

    text = "-".join(parts)
    if len(text) <= 100:
        return text
    return text[:83] + "-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _cdata(text: str):
    from markupsafe import Markup

    return Markup("<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>")


def quiz(request, accepted: Sequence, templates, xml_templates) -> bytes:
    """The quiz file for ``accepted`` variants: statements and solutions from ``templates`` (Markdown),
    the file from moodle.xml in ``xml_templates``."""
    from symreparam.generate import render_variant
    from symreparam.answers import mistake_key
    from symreparam.render import load_template, md_math, render_template, upper_first

    family = request.family
    credit = {q.id: dict(q.credit) for q in family.questions}
    hint = ("<p>Not one of the typical mistakes: compare your working line by line with the worked "
            "solution shown after the quiz.</p>")
    questions = []
    for a in accepted:
        parts = render_variant(request, a, md=templates, moodle=True)
        statement = to_html(parts["sheet.md"])
        feedback = to_html(parts["key.md"])
        batch, v = a.batch, a.position
        for q in family.questions:
            right = Fraction(*batch.fraction(q.answer, v))
            ask = to_html("Find " + md_math(q.ask) + ".")
            text = (statement + "\n" + ask + f"\n<p>Give a number; decimals are accepted within "
                    f"{RELATIVE_TOLERANCE * 100:g}% (three significant figures).</p>")
            answers = [{"fraction": "100", "value": decimal_text(right), "tolerance": tolerance_text(right),
                        "feedback": "<p>Correct.</p>"}]
            by_value: dict[Fraction, list] = {}
            for mistake in batch.program.mistakes:
                if q.answer not in mistake.answers or not batch.shown(mistake, q.answer)[v]:
                    continue
                by_value.setdefault(Fraction(*batch.fraction(mistake_key(mistake.id, q.answer), v)), []).append(mistake)
            values = [right, *by_value]
            for value, found in sorted(by_value.items(), key=lambda item: item[1][0].id):
                # one value, several mistakes: only credit that every one of them earns
                grade = min(credit[q.id].get(m.rule.name, 0.0) for m in found)
                lines = "".join(f"<li><strong>You {inline(m.title)}.</strong> {inline(upper_first(m.why))}.</li>"
                                for m in found)
                note = "This is the answer " + ("each of these typical mistakes gives" if len(found) > 1
                                                else "a typical mistake gives")
                # Moodle takes the first answer whose interval holds the response: the mistakes'
                # intervals are narrowed to keep clear of each other (the right answer's already is)
                gap = min(abs(float(value - other)) for other in values if other != value)
                answers.append({"fraction": moodle_fraction(grade), "value": decimal_text(value),
                                "tolerance": tolerance_text(value, gap / 2.5),
                                "feedback": f"<p>{note}:</p><ul>{lines}</ul>"})
            answers.append({"fraction": "0", "value": "*", "tolerance": "0", "feedback": hint})
            questions.append({
                "name": f"{family.name} {a.ident} {q.id}",
                "idnumber": _idnumber(family.name, request.seed, a.ident, q.id),
                "text": text,
                "feedback": feedback,
                "answers": answers,
            })
    env = xml_templates.env
    env.filters["cdata"] = _cdata
    template = load_template(env, ["moodle.xml"], "--templates")
    info = to_html(f"**{family.title}**: {family.summary} Generated by symreparam, seed {request.seed}. Each "
                   "question's general feedback is the variant's whole worked solution: use deferred feedback "
                   "(Moodle's default), or it shows the other questions' working early.")
    document = render_template(template, "template moodle.xml", category=f"{family.name}-seed{request.seed}",
                              info=info, questions=questions)
    # a customised template can break the markup: Moodle would refuse the whole file on import, so say so now
    import xml.etree.ElementTree as ElementTree

    try:
        ElementTree.fromstring(document.encode("utf-8"))
    except ElementTree.ParseError as exc:
        if request.templates is None:
            raise  # the bundled template and checked inputs cannot do this: a bug, reported as one
        raise SymreparamError("--templates", f"the Moodle quiz is not well-formed XML ({exc}); "
                              "check your moodle.xml template") from None
    return document.encode("utf-8")
