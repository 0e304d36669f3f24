"""The Moodle XML quiz: the structure Moodle's importer reads, and answers a wrong method cannot hit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from fractions import Fraction

import pytest
from conftest import run

from symreparam import family as families
from symreparam.exactvec import Values
from symreparam.generate import Request, generate, solve_variants
from symreparam.malrules import bands_overlap
from symreparam.mdhtml import to_html
from symreparam.moodle import MOODLE_FRACTIONS, decimal_text, moodle_fraction
from symreparam.answers import mistake_key
from symreparam.program import applicable, verify_batch

FAMILIES = sorted(p.stem for p in families.available())


def load(name):
    return families.load(families.find(name))


def quiz(name: str, variants: int = 2, seed: str = "3") -> ET.Element:
    out = generate(Request(family=load(name), variants=variants, seed=seed, formats=("moodle",)))
    return ET.fromstring(out.files["quiz.xml"])


def number(text: str) -> float:
    assert "e" not in text.lower(), text  # plain decimals only
    return float(text)


@pytest.mark.parametrize("name", FAMILIES)
def test_quiz_has_the_structure_moodle_imports(name):
    root = quiz(name)
    assert root.tag == "quiz"
    category, *questions = list(root)
    assert category.get("type") == "category" and category.find("category/text").text.startswith("$course$/")
    fam = load(name)
    assert len(questions) == 2 * len(fam.questions)
    allowed = {moodle_fraction(f) for f in MOODLE_FRACTIONS}
    ids = set()
    for q in questions:
        assert q.get("type") == "numerical"
        assert q.find("name/text").text.startswith(f"{name} ")
        ids.add(q.find("idnumber").text)
        for part in ("questiontext", "generalfeedback"):
            element = q.find(part)
            assert element.get("format") == "html"
            body = element.find("text").text
            ET.fromstring(f"<div>{body}</div>")  # well-formed HTML inside the CDATA
            assert "$" not in body and "\\(" in body  # maths for MathJax, none left in Markdown form
        for tag in ("defaultgrade", "penalty", "hidden", "unitgradingtype", "unitpenalty", "showunits", "unitsleft"):
            assert q.find(tag) is not None, tag
        answers = q.findall("answer")
        assert answers[0].get("fraction") == "100" and answers[-1].find("text").text == "*"
        assert answers[-1].get("fraction") == "0"
        for a in answers:
            assert a.get("fraction") in allowed
            assert a.find("feedback").get("format") == "html" and a.find("feedback/text").text
            assert number(a.find("tolerance").text) >= 0
            if a.find("text").text != "*":
                number(a.find("text").text)
        # no wrong method earns full marks, and each gets its own feedback: the answers' intervals
        # [value - tolerance, value + tolerance] are disjoint, so Moodle's first match is the only one
        intervals = sorted((number(a.find("text").text) - number(a.find("tolerance").text),
                            number(a.find("text").text) + number(a.find("tolerance").text)) for a in answers[:-1])
        for (lo1, hi1), (lo2, hi2) in zip(intervals, intervals[1:]):
            assert hi1 < lo2, (q.find("name/text").text, intervals)
    assert len(ids) == len(questions)  # unique idnumbers


def test_reference_quiz_names_the_issue_mistakes():
    out = generate(Request(family=load("reparam-one-step"), fixed="reference", formats=("moodle",)))
    root = ET.fromstring(out.files["quiz.xml"])
    by_name = {q.find("name/text").text: q for q in root.findall("question[@type='numerical']")}
    w3 = {a.find("text").text: a for a in by_name["reparam-one-step reference w3"].findall("answer")}
    assert w3["14.1"].get("fraction") == "100"
    assert "chain-rule factor" in w3["1.5"].find("feedback/text").text  # 10*w3 treated as w3 ...
    assert "learning rate twice" in w3["1.5"].find("feedback/text").text  # ... and lr^2: the same 3/2 here
    assert w3["7.1"].get("fraction") == "50"  # half the MSE: partial credit, as the family grants
    assert "half the mean squared error" in w3["7.1"].find("feedback/text").text
    slope = {a.find("text").text: a for a in by_name["reparam-one-step reference slope2"].findall("answer")}
    assert slope["141"].get("fraction") == "100" and slope["14.1"].get("fraction") == "50"
    assert "gave the parameter w3 where the slope was asked" in slope["14.1"].find("feedback/text").text


@pytest.mark.parametrize("name", FAMILIES)
def test_no_variant_lets_a_mistake_within_tolerance(name):
    """The generator's guarantee, checked on the exact values of many variants."""
    fam = load(name)
    asked = {q.answer for q in fam.questions}
    for a in solve_variants(Request(family=fam, variants=30, seed="21")):
        b, v = a.batch, a.position
        for mistake in b.program.mistakes:
            if not applicable(b, mistake)[v]:
                continue
            for key in mistake.answers:
                if key not in asked:
                    continue
                num, den = b.fraction(mistake_key(mistake.id, key), v)
                if den == 0:
                    continue
                right = Fraction(*b.fraction(key, v))
                assert not bands_overlap(float(Fraction(num, den)), float(right)), (mistake.id, key)


def test_a_wrong_mistake_value_fails_the_float_check():
    (a,) = solve_variants(Request(family=load("reparam-one-step"), fixed="reference"))
    b = a.batch
    assert verify_batch(b)[0] < 1e-12
    key = mistake_key("chain-rule-factor", "f2.w3.1")
    good = b.values[key]
    tampered = replace(b, values={**b.values, key: Values(good.num + good.den, good.den)})
    assert verify_batch(tampered)[0] > 1e-3


@pytest.mark.parametrize("value, text", [
    (Fraction(141, 10), "14.1"), (Fraction(-2, 5), "-0.4"), (Fraction(1, 3), "0.333333333333"),
    (Fraction(0), "0"), (Fraction(10**15), "1000000000000000"), (Fraction(1, 10**9), "0.000000001"),
])
def test_decimal_text(value, text):
    assert decimal_text(value) == text


def test_fractions_moodle_refuses_are_refused(tmp_path):
    path = tmp_path / "odd.toml"
    source = (families.find("reparam-one-step")).read_text().replace('name = "reparam-one-step"', 'name = "odd"')
    path.write_text(source.replace("half-mse = 0.5", "half-mse = 0.45"))
    result = run("generate", str(path), "--out", str(tmp_path / "o"), "--format", "moodle", code=2)
    assert "0.45 is not a grade Moodle offers" in result.output
    path.write_text(source.replace("half-mse = 0.5", "halfmse = 0.5"))
    assert "unknown mistake 'halfmse'" in run("generate", str(path), "--out", str(tmp_path / "o"), code=2).output
    path.write_text(source.replace("half-mse = 0.5", 'half-mse = "half"'))
    result = run("generate", str(path), "--out", str(tmp_path / "o"), code=2)
    assert ".credit: expected { misconception = fraction between 0 and 1 }, e.g. { half-mse = 0.5 }" in result.output
    assert not (tmp_path / "o").exists()


def test_control_characters_in_family_text_are_refused(tmp_path):
    path = tmp_path / "odd.toml"
    source = (families.find("reparam-one-step")).read_text().replace('name = "reparam-one-step"', 'name = "odd"')
    path.write_text(source.replace('title = "', 'title = "\\u0007', 1))
    result = run("generate", str(path), "--out", str(tmp_path / "o"), code=2)
    assert "title: holds the control character U+0007" in result.output and len(result.output.splitlines()) == 1


def test_a_template_that_breaks_the_xml_is_caught(tmp_path):
    from symreparam.resources import bundled

    custom = tmp_path / "tpl"
    custom.mkdir()
    original = (bundled("templates") / "moodle.xml").read_text()
    (custom / "moodle.xml").write_text(original.replace("</quiz>", "</quiz"))
    result = run("generate", "stability", "-n", "1", "--format", "moodle", "--templates", str(custom),
                 "--out", str(tmp_path / "o"), code=2)
    assert "--templates: the Moodle quiz is not well-formed XML" in result.output
    assert not (tmp_path / "o").exists()


def test_markdown_to_html():
    html = to_html("## Title\n\n**Model $f_1$:** text with $a < b$ and *emphasis*\n\n1. one\n2. two $x_1$\n\n"
                   "| a | $b$ |\n|---|---|\n| 1 | 2 |\n\n$$\n\\begin{aligned} a &= b \\\\ c &= d\\end{aligned}\n$$")
    root = ET.fromstring(f"<div>{html}</div>")
    assert root.find("h4").text == "Title"
    assert root.find("p/strong").text == "Model \\(f_1\\):"
    assert "\\(a &lt; b\\)" in html and "<em>emphasis</em>" in html
    assert [li.text for li in root.find("ol")] == ["one", "two \\(x_1\\)"]
    assert len(root.find("table")) == 2
    assert "\\[\\begin{aligned} a &amp;= b" in html
    # a table of nothing but rules (a custom template's slip) is left out, not a crash
    assert to_html("text\n\n|---|\n\n|\n\nmore") == "<p>text</p>\n<p>more</p>"


def test_quiz_is_byte_identical_across_runs():
    one = generate(Request(family=load("stability"), variants=3, seed="5", formats=("moodle",)))
    two = generate(Request(family=load("stability"), variants=3, seed="5", formats=("moodle",)))
    assert one.files["quiz.xml"] == two.files["quiz.xml"]


def test_long_id_numbers_stay_unique():
    from symreparam.moodle import _idnumber

    long_seed = "s" * 120
    a, b = _idnumber("fam", long_seed, "1", "w1"), _idnumber("fam", long_seed, "1", "w2")
    assert len(a) <= 100 and len(b) <= 100 and a != b
