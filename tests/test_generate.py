"""The generator: families, exact answers against the engine, constraints, golden files, files on disk."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import pytest
import sympy as sp

from symreparam import family as families
from conftest import run
from symreparam.errors import SymreparamError
from symreparam.generate import Request, generate, solve_variants, write_output
from symreparam.problem import REFERENCE
from symreparam.program import variant_problem
from symreparam.solution import solve

GOLDEN = Path(__file__).parent / "golden"
FAMILIES = sorted(p.stem for p in families.available())


def load(name: str):
    return families.load(families.find(name))


def frac(text: str) -> Fraction:
    return Fraction(text)


def test_seven_families_are_bundled():
    assert FAMILIES == sorted(["reparam-one-step", "general-linear-reparam", "tangent-kernel", "stability",
                               "implicit-bias", "newton-invariance", "multi-step"])


def test_reference_is_a_fixed_variant_of_the_first_family():
    fam = load("reparam-one-step")
    problem = variant_problem(fam, fam.fixed["reference"])
    assert [sp.sstr(m.expression) for m in problem.models] == ["w1*x + w2", "10*w3*x + w4"]
    # the literal reference of `symreparam solve` is the same problem
    ref = solve()
    assert solve(problem).models[1].derivation.final == ref.models[1].derivation.final
    assert REFERENCE["init"] == ["w1=1", "w2=2", "w3=0.1", "w4=2"]
    (variant,) = solve_variants(Request(family=fam, fixed="reference"))
    b, v = variant.batch, variant.position
    assert b.fraction("f1.w1.1", v) == (12, 5) and b.fraction("f1.w2.1", v) == (11, 5)
    assert b.fraction("f2.w3.1", v) == (141, 10) and b.fraction("f2.w4.1", v) == (11, 5)
    assert b.fraction("f2.end.slope", v) == (141, 1) and b.fraction("ratio.f2.slope", v) == (100, 1)
    assert b.fraction("f1.max_lr", v) == (1, 50) and b.fraction("f2.max_lr", v) == (1, 4901)


def _engine_answers(problem):
    """The same quantities computed by the ordinary engine on the variant's numeric problem."""
    sol = solve(problem)
    out = {}
    for m in sol.models:
        d = m.derivation
        for t, step in enumerate(d.trajectory):
            for w, value in zip(d.model.params, step):
                out[f"{d.model.name}.{w.name}.{t}"] = value
        labels = sol.comparison.basis.labels
        for label, a, b in zip(labels, m.coefficients_initial, m.coefficients_final):
            out[f"{d.model.name}.start.{label}"] = a
            out[f"{d.model.name}.end.{label}"] = b
        if d.stability is not None:
            out[f"{d.model.name}.max_lr"] = d.stability.max_lr
        for kind, values in (("limit", d.limit), ("newton", d.newton)):
            if values is not None:
                for w, value in zip(d.model.params, values):
                    out[f"{d.model.name}.{kind}.{w.name}"] = value
        for i in range(d.gram.rows):
            for j in range(d.gram.cols):
                out[f"{d.model.name}.gram.{i + 1}.{j + 1}"] = d.gram[i, j]
    return out


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("seed", ["3", "271828"])
def test_derived_once_answers_equal_the_engine_on_each_variant(name, seed):
    fam = load(name)
    variants = solve_variants(Request(family=fam, variants=2, seed=seed))
    for a in variants:
        drawn = a.batch.drawn[a.position]
        problem = variant_problem(fam, drawn)
        expected = _engine_answers(problem)
        assert expected
        for key, value in expected.items():
            if key not in a.batch.columns:
                # the largest eigenvalue of a Gram matrix with symbolic entries is not a rational function
                # of the draws, so a family with several points has no derive-once max_lr (the engine has)
                assert key.endswith(".max_lr") and problem.data.size > 1, key
                continue
            n, d = a.batch.fraction(key, a.position)
            assert sp.Rational(n, d) == value, (key, drawn)
        assert a.max_rel_error < 1e-9


@pytest.mark.parametrize("name", FAMILIES)
def test_constraints_hold_for_every_variant(name):
    fam = load(name)
    c = fam.constraints
    for a in solve_variants(Request(family=fam, variants=40, seed="11")):
        b, v = a.batch, a.position
        val = lambda key: Fraction(*b.fraction(key, v))  # noqa: E731
        for key in c.nonzero:
            assert val(key) != 0
        for x, y in c.different:
            assert val(x) != val(y)
        for x, y in c.less:
            assert val(x) < val(y)
        for q in fam.questions:
            n, d = b.fraction(q.answer, v)
            assert d <= c.max_denominator and abs(n) < 10**c.max_digits


def test_stability_family_rate_is_stable_for_one_model_only():
    for a in solve_variants(Request(family=load("stability"), variants=20, seed="2")):
        b, v = a.batch, a.position
        lr = Fraction(*b.fraction("lr", v))
        assert lr < Fraction(*b.fraction("f1.max_lr", v)) and lr > Fraction(*b.fraction("f2.max_lr", v))
        assert abs(Fraction(*b.fraction("f1.contraction", v))) < 1 < abs(Fraction(*b.fraction("f2.contraction", v)))


def test_same_seed_same_bytes_and_other_seed_other_variants(tmp_path):
    fam = load("reparam-one-step")
    one = generate(Request(family=fam, variants=5, seed="9", formats=("tex", "md", "json")))
    two = generate(Request(family=fam, variants=5, seed="9", formats=("tex", "md", "json")))
    assert one.files == two.files
    other = generate(Request(family=fam, variants=5, seed="10", formats=("tex", "md", "json")))
    assert other.files["key-1.tex"] != one.files["key-1.tex"]
    # a variant depends only on (family, seed, id): asking for more variants does not change the first ones
    more = generate(Request(family=fam, variants=7, seed="9", formats=("tex",)))
    assert more.files["key-1.tex"] == one.files["key-1.tex"]
    # ... not even when the file names get a leading zero
    ten = generate(Request(family=fam, variants=10, seed="9", formats=("tex",)))
    assert ten.files["key-01.tex"] == one.files["key-1.tex"] and "key-10.tex" in ten.files


def test_manifest_records_everything(tmp_path):
    fam = load("tangent-kernel")
    out = generate(Request(family=fam, variants=3, seed="4", formats=("tex", "json")))
    manifest = json.loads(out.files["manifest.json"])
    assert manifest["family"] == "tangent-kernel" and manifest["seed"] == "4"
    assert set(manifest["versions"]) == {"sympy", "numpy", "jinja2"}
    assert len(manifest["family_sha256"]) == 64 and len(manifest["templates_sha256"]) == 64
    assert manifest["booklets"] == ["keys.tex", "sheets.tex"]
    assert len(manifest["variants"]) == 3
    for record in manifest["variants"]:
        assert set(record["drawn"]) == {d.name for d in fam.draws}
        assert record["max_rel_error"] < 1e-9
        assert set(record["questions"]) == {q.id for q in fam.questions}
        for key, text in record["answers"].items():
            frac(text)  # every answer reads back as an exact rational
        assert all(name in out.files for name in record["files"])
        assert json.loads(out.files[f"variant-{record['id']}.json"]) == record


def _golden_dir(name: str) -> Path:
    return GOLDEN / f"{name}-seed1"


@pytest.mark.parametrize("name", FAMILIES)
def test_golden_files(name):
    """Sheets, keys and answers of variant 1, seed 1 of every family, byte for byte.

    Regenerate on purpose with SYMREPARAM_REGEN_GOLDEN=1 after an intended change, and review the diff.
    """
    out = generate(Request(family=load(name), variants=1, seed="1", formats=("tex", "md", "json")))
    folder = _golden_dir(name)
    wanted = ["sheet-1.tex", "key-1.tex", "sheet-1.md", "key-1.md", "variant-1.json"]
    if os.environ.get("SYMREPARAM_REGEN_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for file in wanted:
            (folder / file).write_bytes(out.files[file])
    for file in wanted:
        assert (folder / file).exists(), f"missing golden file {folder / file}; see the docstring"
        assert out.files[file].decode() == (folder / file).read_text(), f"{name}/{file} changed"


def test_write_output_refuses_to_overwrite_and_replaces_with_force(tmp_path):
    fam = load("reparam-one-step")
    out = generate(Request(family=fam, variants=2, seed="1"))
    target = tmp_path / "out"
    write_output(target, out)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(SymreparamError, match="already exists and is not empty; pass --force"):
        write_output(target, out)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    (target / "key-2.tex").write_text("an older run's file")
    write_output(target, out, force=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left
    # --force replaces only what generate wrote: a stranger's file, or a stranger's manifest, stops it
    (target / "notes.txt").write_text("mine")
    with pytest.raises(SymreparamError, match="holds notes.txt, which generate never writes"):
        write_output(target, out, force=True)
    assert (target / "notes.txt").read_text() == "mine"
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text('{"name": "my web app"}')
    with pytest.raises(SymreparamError, match="its manifest.json is not one symreparam wrote"):
        write_output(other, out, force=True)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SymreparamError, match="is a symbolic link"):
        write_output(link, out, force=True)
    assert (target / "notes.txt").exists()


def _failing_float_check(monkeypatch, bad: dict) -> None:
    """Make generate's float64 check reject the variant whose draws are ``bad``."""
    import symreparam.generate as gen

    real = gen.verify_batch

    def check(batch):
        errors = real(batch)
        for v, drawn in enumerate(batch.drawn):
            if drawn == bad:
                errors[v] = 1.0
        return errors

    monkeypatch.setattr(gen, "verify_batch", check)


def test_a_variant_failing_the_float64_check_is_redrawn_as_if_it_had_failed_in_its_round(monkeypatch):
    from symreparam.generate import _validity
    from symreparam.program import evaluate_program

    fam = load("reparam-one-step")
    request = Request(family=fam, variants=80, seed="9")
    before = solve_variants(request)
    program = before[0].batch.program

    def valid(ident: str, attempt: int) -> bool:
        return _validity(fam, evaluate_program(program, [fam.draw("9", ident, attempt)]))[0] is None

    # a slot whose second attempt was taken in a round that also drew its third, which is valid too:
    # when the second fails the float64 check, the third is the slot's first valid attempt
    slot, target = next((i, a) for i, a in enumerate(before) if a.attempts == 2 and valid(a.ident, 3))
    bad = target.batch.drawn[target.position]
    assert [a.batch.drawn[a.position] for a in before].count(bad) == 1
    _failing_float_check(monkeypatch, bad)
    after = solve_variants(request)
    assert after[slot].ident == target.ident and after[slot].attempts == 3
    assert after[slot].batch.drawn[after[slot].position] == fam.draw("9", target.ident, 3)
    assert after[slot].max_rel_error < 1e-9
    others = [i for i in range(len(before)) if i != slot]
    assert [after[i].batch.drawn[after[i].position] for i in others] == \
        [before[i].batch.drawn[before[i].position] for i in others]


def test_a_fixed_variant_failing_the_float64_check_is_refused(monkeypatch):
    fam = load("reparam-one-step")
    _failing_float_check(monkeypatch, dict(fam.fixed["reference"]))
    with pytest.raises(SymreparamError, match="fixed variant 'reference' is not valid: the float64 check disagrees"):
        solve_variants(Request(family=fam, fixed="reference"))


def test_threaded_writing_and_removal(tmp_path):
    from symreparam.folders import _remove_all, _write_all

    files = {f"key-{i}.tex": f"body {i}".encode() * (i % 7) for i in range(300)}  # empty files too
    folder = tmp_path / "out"
    folder.mkdir()
    _write_all(folder, files)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    # a file that exists already, among those the threads write, is an error, not a silent overwrite
    again = tmp_path / "again"
    again.mkdir()
    (again / "key-250.tex").write_text("mine")
    with pytest.raises(FileExistsError):
        _write_all(again, files)
    assert (again / "key-250.tex").read_text() == "mine"
    # any other failure in a thread is raised too, once every thread has stopped
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(TypeError):
        _write_all(broken, {**files, "key-299.tex": "text, not bytes"})
    # removal takes the files in threads and whatever else is there after them
    (folder / "later").mkdir()
    (folder / "later" / "x").write_text("x")
    _remove_all(folder)
    assert not folder.exists()
    _remove_all(folder)  # gone already: nothing to do, no error


def test_removal_never_follows_a_link_put_in_place_of_the_old_output(tmp_path):
    from symreparam.folders import _remove_all

    real = tmp_path / "real"
    real.mkdir()
    for i in range(200):
        (real / f"key-{i}.tex").write_text("keep me")
    link = tmp_path / "old"
    link.symlink_to(real, target_is_directory=True)
    _remove_all(link)
    assert len(list(real.iterdir())) == 200


def test_a_failed_write_leaves_the_earlier_output_in_place(tmp_path):
    from symreparam.folders import write_folder

    out = generate(Request(family=load("reparam-one-step"), variants=60, seed="1"))
    target = tmp_path / "out"
    write_output(target, out)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(TypeError):
        write_folder(target, {**out.files, "key-60.tex": "text, not bytes"}, force=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_an_output_folder_that_cannot_be_listed_is_not_replaced(tmp_path, monkeypatch):
    import symreparam.folders as folders

    out = generate(Request(family=load("reparam-one-step"), variants=2, seed="1"))
    write_output(tmp_path / "out", out)

    def unlistable(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(folders.os, "scandir", unlistable)
    with pytest.raises(SymreparamError, match=r"not an earlier symreparam output \(it cannot be listed: "
                                              r"Permission denied\)"):
        write_output(tmp_path / "out", out, force=True)


def test_output_never_replaces_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for where in (".", "..", str(tmp_path)):
        result = run("generate", "stability", "--out", where, "--force", code=2)
        assert "is the current folder or one above it" in result.output
    assert list(tmp_path.iterdir()) == []


# --- the command line ----------------------------------------------------------------------------------


def test_list_shows_every_family():
    lines = run("list").output.strip().splitlines()
    assert len(lines) == len(FAMILIES)
    assert lines[0].split()[0] in FAMILIES and all(len(line) > 30 for line in lines)


def test_generate_command_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "hw"
    result = run("generate", "reparam-one-step", "-n", "3", "--seed", "5", "--out", str(out))
    assert "wrote" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["key-1.tex", "key-2.tex", "key-3.tex", "keys.tex", "manifest.json", "sheet-1.tex",
                            "sheet-2.tex", "sheet-3.tex", "sheets.tex", "variant-1.json", "variant-2.json",
                            "variant-3.json"])
    first = (out / "key-1.tex").read_bytes()
    result = run("generate", "reparam-one-step", "-n", "3", "--seed", "6", "--out", str(out), code=2)
    assert "already exists and is not empty; pass --force" in result.output and (out / "key-1.tex").read_bytes() == first
    run("generate", "reparam-one-step", "-n", "1", "--seed", "6", "--out", str(out), "--force", "-q")
    assert not (out / "key-2.tex").exists()


def test_roster_gives_one_named_variant_per_student(tmp_path):
    roster = tmp_path / "class.csv"
    roster.write_text("id,name\ns001,Ada Lovelace\ns002,Émile Borel & Co_ 100%\n", encoding="utf-8")
    out = tmp_path / "hw"
    run("generate", "stability", "--roster", str(roster), "--seed", "3", "--out", str(out), "--format", "tex,md")
    sheet = (out / "sheet-s002.tex").read_text(encoding="utf-8")
    assert r"Émile Borel \& Co\_ 100\%" in sheet and "s002" in sheet
    assert "Ada Lovelace" in (out / "key-s001.md").read_text(encoding="utf-8")
    # a student's variant depends on their id and the seed, not on who else is on the roster
    solo = tmp_path / "solo.csv"
    solo.write_text("id,name\ns002,Someone\n")
    run("generate", "stability", "--roster", str(solo), "--seed", "3", "--out", str(tmp_path / "solo"))
    manifest = json.loads((out / "manifest.json").read_text())
    solo_manifest = json.loads((tmp_path / "solo" / "manifest.json").read_text())
    assert manifest["variants"][1]["drawn"] == solo_manifest["variants"][0]["drawn"]


@pytest.mark.parametrize("content, message", [
    ("name,id\n1,a\n", "the first line must be the header id,name"),
    ("id,name\n1,a\n1,b\n", "id '1' appears twice"),
    ("id,name\n", "no students listed"),
    ("id,name\na b,Ann\na_b,Bob\n", "the ids 'a b' and 'a_b' give the same file name 'a_b'"),
    ("id,name\ns1,Ann\x01Lee\n", "line 2: the control character U+0001 cannot go into a document"),
    ('id,name\ns1,"Ann\n\nLee"\n', "line 2: the control character U+000A cannot go into a document"),
])
def test_bad_rosters(tmp_path, content, message):
    roster = tmp_path / "r.csv"
    roster.write_text(content)
    result = run("generate", "stability", "--roster", str(roster), "--out", str(tmp_path / "o"), code=2)
    assert message in result.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, message", [
    (["no-such-family"], "unknown family 'no-such-family'"),
    (["reparam-one-step", "--fixed", "nope"], "has no fixed variant 'nope'; it has: reference"),
    (["reparam-one-step", "--format", "tex,docx"], "unknown format docx"),
    (["reparam-one-step", "--roster", "missing.csv"], "missing.csv: no such file"),
    (["nope.toml"], "FAMILY nope.toml: no such family file"),
    # options the rest of the command would ignore are refused, not dropped silently
    (["reparam-one-step", "--fixed", "reference", "-n", "3"], "--variants: --fixed makes exactly one; drop --variants"),
    (["reparam-one-step", "--roster", "r.csv", "-n", "3"], "--variants: --roster gives one variant per student"),
    (["reparam-one-step", "--seed", ""], "--seed: empty; give any word or number"),
    (["stability", "--seed", "a\x01b", "--format", "moodle"], "--seed: holds the control character U+0001"),
    (["reparam-one-step", "--fixed", "reference", "--seed", "7"], "--seed: a fixed variant is the same whatever"),
    (["reparam-one-step", "--format", "json", "--templates", "."], "--templates: --format json uses no templates"),
])
def test_generate_refusals(tmp_path, args, message):
    result = run("generate", *args, "--out", str(tmp_path / "o"), code=2)
    assert message in result.output and result.output.count("\n") == 1


FAMILY = '''name = "{name}"
title = "A test family"
summary = "For tests."
[draw]
a = {{ integers = [1, 3] }}
[problem]
models = ["w*x"]
init = {{ w = "a" }}
data = [{{ x = "1", y = "2" }}]
lr = "1/10"
[[questions]]
id = "w"
ask = "w"
answer = "f1.w.1"
'''


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('title = "A test family"\n', ""), "bad.toml: title: expected a non-empty string"),
    (lambda s: s.replace("integers = [1, 3]", "integers = [3, 1]"), "bad.toml: draw.a.integers"),
    (lambda s: s.replace('answer = "f1.w.1"', 'answer = "f1.w.9"'), "bad.toml: questions: unknown answer key"),
    (lambda s: "colour = 1\n" + s, "bad.toml: colour: unknown key"),
    (lambda s: s.replace('models = ["w*x"]', 'models = ["open(x)"]'), "unknown function 'open'"),
    (lambda s: s.replace("[problem]", "[problem]\nlr2 = 1"), "bad.toml: problem: lr2: unknown key"),
    (lambda s: s.replace('models = ["w*x"]', 'models = ["exp(w)*x"]'), "f1 is not linear in its parameters"),
    (lambda s: s + "[constraints]\nless = [[\"f1.w.1\", \"f1.w.1\"]]\n", "no valid variant"),
    (lambda s: s + "[templates]\nkey = \"nowhere/key.tex\"\n", "bad.toml: templates.key: no template nowhere/key.tex"),
    (lambda s: s[:20], "not valid TOML"),
    # a drawn rate is still a name when the problem is read: each variant's value must be positive
    (lambda s: s.replace('lr = "1/10"', 'lr = "r"').replace("[problem]", 'r = { choice = ["-1/10", "0"] }\n[problem]'),
     "the learning rate is not positive (200x)"),
])
def test_bad_family_files_get_one_line(tmp_path, edit, message):
    (tmp_path / "bad.toml").write_text(edit(FAMILY.format(name="bad")))
    result = run("generate", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"), code=2)
    assert message in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "o").exists()


def test_own_families_and_templates(tmp_path):
    folder = tmp_path / "families"
    folder.mkdir()
    (folder / "tiny.toml").write_text(FAMILY.format(name="tiny"))
    assert "tiny" in run("list", "--exercises", str(folder)).output
    templates = tmp_path / "templates"
    (templates / "tiny").mkdir(parents=True)
    (templates / "tiny" / "sheet.tex").write_text("MY SHEET \\VAR{n['f1.w.0']}")
    (templates / "tiny" / "key.tex").write_text("MY KEY \\VAR{n['f1.w.1']}")
    out = tmp_path / "o"
    run("generate", "tiny", "--exercises", str(folder), "--templates", str(templates), "--out", str(out), "-n", "2")
    assert "MY SHEET" in (out / "sheet-1.tex").read_text() and "\\documentclass" in (out / "key-2.tex").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_compiles_to_pdf(name):
    out = generate(Request(family=load(name), variants=2, seed="8", formats=("pdf",)))
    for file in ("sheet-1.pdf", "key-1.pdf", "sheet-2.pdf", "key-2.pdf", "sheets.pdf", "keys.pdf"):
        assert out.files[file].startswith(b"%PDF"), file


@pytest.mark.slow
def test_pdfs_are_byte_identical_across_runs():
    fam = load("reparam-one-step")
    one = generate(Request(family=fam, fixed="reference", formats=("pdf",)))
    two = generate(Request(family=fam, fixed="reference", formats=("pdf",)))
    assert one.files["key-reference.pdf"] == two.files["key-reference.pdf"]


def test_missing_pdflatex_names_the_packages(monkeypatch):
    import shutil as shutil_module

    monkeypatch.setattr(shutil_module, "which", lambda name: None)
    with pytest.raises(SymreparamError, match="texlive-latex-base texlive-latex-recommended texlive-pictures"):
        generate(Request(family=load("reparam-one-step"), fixed="reference", formats=("pdf",)))


@pytest.mark.slow
def test_worker_processes_give_the_same_bytes(monkeypatch):
    fam = load("reparam-one-step")
    request = Request(family=fam, variants=250, seed="4", formats=("tex", "md", "json"))
    monkeypatch.setenv("SYMREPARAM_WORKERS", "1")
    alone = generate(request)
    monkeypatch.setenv("SYMREPARAM_WORKERS", "2")
    shared = generate(request)
    assert alone.files == shared.files


@pytest.mark.slow
def test_more_workers_than_work_lose_no_variant(monkeypatch):
    # with many workers and few chunks one process may run two shares, the second finding no work
    request = Request(family=load("reparam-one-step"), variants=100, seed="6", formats=("tex", "json"))
    monkeypatch.setenv("SYMREPARAM_WORKERS", "1")
    alone = generate(request).files
    monkeypatch.setenv("SYMREPARAM_WORKERS", "16")
    for _ in range(6):
        assert generate(request).files == alone


@pytest.mark.slow
def test_a_worker_that_dies_is_reported_not_waited_for(monkeypatch):
    import symreparam.generate as gen

    def dies(_):
        os._exit(3)  # as the out-of-memory killer would end it

    dies.__module__, dies.__qualname__ = gen._render_share.__module__, gen._render_share.__qualname__
    monkeypatch.setattr(gen, "_render_share", dies)
    monkeypatch.setenv("SYMREPARAM_WORKERS", "2")
    with pytest.raises(SymreparamError, match="worker process rendering the variants died"):
        generate(Request(family=load("reparam-one-step"), variants=250, seed="4", formats=("tex",)))


@pytest.mark.slow
def test_an_error_in_a_worker_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMREPARAM_WORKERS", "2")
    templates = tmp_path / "templates" / "reparam-one-step"
    templates.mkdir(parents=True)
    (templates / "sheet.tex").write_text("\\BLOCK{if variant.index > 100}\\VAR{nowhere}\\BLOCK{endif}sheet")
    result = run("generate", "reparam-one-step", "-n", "250", "--templates", str(tmp_path / "templates"),
                 "--out", str(tmp_path / "o"), code=2)
    assert "'nowhere' is undefined" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_question_about_a_drawn_value_is_refused(tmp_path):
    (tmp_path / "bad.toml").write_text(FAMILY.format(name="bad").replace('answer = "f1.w.1"', 'answer = "a"'))
    result = run("generate", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"), code=2)
    assert "'a' is a drawn value, not a result to work out" in result.output


@pytest.mark.slow
def test_latex_in_a_family_cannot_read_local_files(tmp_path):
    source = families.find("reparam-one-step").read_text().replace('name = "reparam-one-step"', 'name = "peek"')
    secret = tmp_path / "secret.tex"
    secret.write_text("TOPSECRET")
    path = tmp_path / "peek.toml"
    path.write_text(source.replace('ask = "the value of \\\\(w_1\\\\) after the step"',
                                   f'ask = "\\\\input{{{secret}}}"'))
    result = run("generate", str(path), "--format", "pdf", "--out", str(tmp_path / "o"), code=2)
    assert "pdflatex failed" in result.output and not (tmp_path / "o").exists()


def test_joined_batches_give_each_variant_the_figures_of_its_own_batch():
    import dataclasses

    import numpy as np

    from symreparam.exactvec import Values
    from symreparam.program import derive_program, evaluate_program, join_batches, verify_batch

    fam = load("stability")
    program = derive_program(fam, {})
    first = evaluate_program(program, [fam.draw("2", str(i), 1) for i in range(30)])
    second = evaluate_program(program, [fam.draw("2", str(i), 2) for i in range(12)])
    parts = [(second, [11, 0, 5]), (first, [29, 3, 4, 17]), (second, [7])]
    joined = join_batches(parts)
    assert joined.size == 8
    assert list(joined.drawn) == [batch.drawn[v] for batch, positions in parts for v in positions]
    for key, values in joined.values.items():
        expected = [batch.values[key].fraction(v) for batch, positions in parts for v in positions]
        assert [values.fraction(i) for i in range(joined.size)] == expected
    # the float64 check of a variant does not depend on the batch it is checked in, to the last bit
    expected = np.concatenate([verify_batch(batch)[positions] for batch, positions in parts])
    assert np.array_equal(verify_batch(joined), expected)
    # Python-integer columns (from variants too large for int64) join with int64 ones
    key = sorted(first.values)[0]
    wide = first.values[key]
    wide = Values(wide.num.astype(object), wide.den.astype(object))
    mixed = join_batches([(dataclasses.replace(first, values={**first.values, key: wide}), [1, 2]), (second, [3])])
    assert mixed.values[key].num.dtype == object
    assert [mixed.values[key].fraction(i) for i in range(3)] == \
        [first.values[key].fraction(1), first.values[key].fraction(2), second.values[key].fraction(3)]
    assert join_batches([(first, list(range(30)))]) is first
    with pytest.raises(ValueError, match="no batch"):
        join_batches([])
    other = evaluate_program(derive_program(load("reparam-one-step"), {}), [load("reparam-one-step").draw("2", "1", 1)])
    with pytest.raises(ValueError, match="different programs"):
        join_batches([(first, [0]), (other, [0])])


def test_mistakes_apply_per_variant_by_its_own_loss():
    from symreparam.program import applicable, derive_program, evaluate_program

    fam = load("reparam-one-step")
    program = derive_program(fam, {})
    batch = evaluate_program(program, [fam.draw("3", str(i), 1) for i in range(40)])
    losses = [drawn["loss"] for drawn in batch.drawn]
    assert len(set(losses)) > 1  # the family draws its loss: both conventions occur
    n = program.problem.data.size
    varies = 0
    for mistake in program.mistakes:
        expected = [mistake.applies(loss, n) for loss in losses]
        assert applicable(batch, mistake).tolist() == expected
        varies += len(set(expected)) > 1
    assert varies  # some mistake can be made under one loss convention and not the other


def _generate_with_stderr(tmp_path, terminal: bool, *extra: str) -> str:
    """Run ``symreparam generate`` in a subprocess with stderr a terminal (a pty) or a pipe; its stderr."""
    import pty
    import subprocess
    import sys

    command = [sys.executable, "-m", "symreparam", "generate", "reparam-one-step", "-n", "120", "--seed", "3",
               "--format", "json", "--out", str(tmp_path / f"o{len(list(tmp_path.iterdir()))}"), *extra]
    if not terminal:
        done = subprocess.run(command, capture_output=True, timeout=300)
        assert done.returncode == 0
        return done.stderr.decode()
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=secondary)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=300) == 0
    finally:
        os.close(main)
    return b"".join(chunks).decode(errors="replace")


def test_progress_shows_on_a_terminal_only_and_not_with_quiet(tmp_path):
    summary = "wrote 121 files for 120 variants of reparam-one-step to"
    shown = _generate_with_stderr(tmp_path, True)
    assert "solving" in shown and summary in shown
    assert "rendering  [####################################]  100%" in shown  # the bar ends full
    assert "draws rejected and redrawn" in shown or "draw rejected and redrawn" in shown
    piped = _generate_with_stderr(tmp_path, False)
    assert piped.startswith(summary) and piped.count("\n") == 1  # the summary line alone
    assert _generate_with_stderr(tmp_path, True, "--quiet") == ""
