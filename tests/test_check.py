"""The answer checker: exact verdicts, typical mistakes, errors carried forward, student input."""

from __future__ import annotations

import json

import pytest
import sympy as sp
from click.testing import CliRunner
from conftest import R, run

from symreparam.answers import answer_expressions
from symreparam.check import check_answers, reference_exercise, split_answer
from symreparam.cli import cli
from symreparam.errors import SymreparamError
from symreparam.malrules import RULES, mistakes
from symreparam.problem import build_problem, reference_problem
from symreparam.solution import analyse

# By hand, reference exercise (r = -1, x = 7, lr = 1/10, mse so c' = 2):
#   half-mse: c' = 1: w1 = 1 + 7/10 = 17/10, w3 = 1/10 + 7 = 71/10, slope 71
#   chain rule forgotten: df2/dw3 taken as x: dL/dw3 = -14, w3 = 1/10 + 14/10 = 3/2, slope 15, ratio 10
#   x left out: dL/dw1 = -2, w1 = 6/5; df2/dw3 = 10: dL/dw3 = -20, w3 = 21/10
#   ascent: w1 = 1 - 14/10 = -2/5; lr left out: w1 = 15; lr twice: w1 = 1 + 14/100 = 57/50
#   w3 reported for the slope: 141/10 (ratio of parameter moves 14/1.4 = 10)
#   1/lambda for 2/lambda: 1/100 for f1
EXPECTED = {
    "half-mse": {"f1.w1.1": R(17, 10), "f2.w3.1": R(71, 10), "f2.end.slope": 71, "f1.max_lr": R(1, 25)},
    "chain-rule-factor": {"f2.grad.w3": -14, "f2.w3.1": R(3, 2), "f2.end.slope": 15, "ratio.f2.slope": 10},
    "x-left-out": {"f1.w1.1": R(6, 5), "f2.grad.w3": -20, "f2.w3.1": R(21, 10)},
    "gradient-ascent": {"f1.w1.1": R(-2, 5), "f2.w4.1": R(9, 5)},
    "lr-omitted": {"f1.w1.1": 15, "f2.w3.1": R(1401, 10)},
    "lr-twice": {"f1.w1.1": R(57, 50), "f2.w3.1": R(3, 2)},
    "only-one-updated:f2.w4": {"f2.w3.1": R(1, 10), "f2.end.slope": 1},
    "only-one-updated:f2.w3": {"f2.w4.1": 2},
    "parameter-for-coefficient:f2.w3.slope": {"f2.end.slope": R(141, 10), "ratio.f2.slope": 10},
    "same-as-first-model:f2": {"f2.end.slope": R(12, 5), "ratio.f2.slope": 1},
    "stable-rate-without-2": {"f1.max_lr": R(1, 100), "f2.max_lr": R(1, 9802)},
}


def test_mistakes_of_the_reference_by_hand():
    analysis = analyse(reference_problem())
    correct = answer_expressions(analysis)
    found = {m.id: m for m in mistakes(analysis, correct)}
    for mistake_id, values in EXPECTED.items():
        assert mistake_id in found, mistake_id
        for key, value in values.items():
            assert found[mistake_id].answers[key] == value, (mistake_id, key)
    # a rule that cannot apply is not there: the loss is mse, and there is one point
    assert "mse-for-half-mse" not in found and "sum-for-mean" not in found
    # and no mistake ever reproduces a right answer
    for m in found.values():
        for key, value in m.answers.items():
            assert sp.expand(value - correct[key]) != 0


def test_every_rule_is_documented():
    for rule in RULES:
        assert rule.title and rule.why and rule.step in ("gradient", "chain rule", "update", "answer", "stability",
                                                         "reparameterisation")


def test_half_mse_reverse_and_sum_for_mean():
    analysis = analyse(reference_problem(loss="half-mse"))
    found = {m.id: m for m in mistakes(analysis, answer_expressions(analysis))}
    assert found["mse-for-half-mse"].answers["f1.w1.1"] == R(12, 5)  # the mse answer
    two = analyse(build_problem(models=["w1*x + w2"], init=["w1=0", "w2=0"], data=["x=1,y=1", "x=2,y=2"]))
    found = {m.id: m for m in mistakes(two, answer_expressions(two))}
    # mse, n = 2: c' = 1, grad = (-(1) - 2*2, -1 - 2) = (-5, -3); summing instead doubles it
    assert found["sum-for-mean"].answers["f1.w1.1"] == 1 and found["sum-for-mean"].answers["f1.w2.1"] == R(3, 5)


def verdicts(*answers, exercise=None):
    report = check_answers(exercise or reference_exercise(), [split_answer(a) for a in answers])
    return {v.name: v for v in report.verdicts}


@pytest.mark.parametrize("answer", [
    "w1=12/5", "w1=2.4", "w1=2.40", "w1=2.395",  # within 0.5%
    "w3=14.1", "w3=\\frac{141}{10}", "slope2=141", "ratio=100",
    "f1=12/5 x + 11/5", "f1=2.4x+2.2", "f1=\\frac{12}{5}x + \\frac{11}{5}", "f2=141x+2.2", "f2=141·x + 2.2",
    "w2=11/5", "f1.end.bias=2.2", "f2.w4.1=2.2",
])
def test_right_answers(answer):
    (v,) = verdicts(answer).values()
    assert v.correct and v.status == "correct"


@pytest.mark.parametrize("answer, mistake", [
    ("w1=1.7", "half-mse"),
    ("w3=7.1", "half-mse"),
    ("w3=1.5", "chain-rule-factor"),
    ("w3=1.5", "lr-twice"),  # both give 3/2 here: both are named
    ("w1=1.2", "x-left-out"),
    ("w1=-0.4", "gradient-ascent"),
    ("w1=\u22122/5", "gradient-ascent"),  # unicode minus
    ("w1=15", "lr-omitted"),
    ("w1=1.14", "lr-twice"),
    ("w4=2", "only-one-updated:f2.w3"),
    ("slope2=14.1", "parameter-for-coefficient:f2.w3.slope"),
    ("slope2=2.4", "same-as-first-model:f2"),
    ("f2=71x+2.1", "half-mse"),
    ("f2 = 15x + 11/5", "chain-rule-factor"),
])
def test_typical_mistakes_are_named(answer, mistake):
    (v,) = verdicts(answer).values()
    assert not v.correct and mistake in [d.id for d in v.diagnoses]
    d = next(d for d in v.diagnoses if d.id == mistake)
    assert d.title and d.why and d.step


def test_where_the_paths_part():
    (v,) = verdicts("w3=1.5").values()
    d = next(d for d in v.diagnoses if d.id == "chain-rule-factor")
    assert d.step == "the chain rule" and d.where == "dL/dw3 (f2)" and (d.worked, d.yours) == ("-140", "-14")
    # for a parameter, its own line: w2 with half the MSE parts at dL/dw2, not dL/dw1
    (v,) = verdicts("w2=2.1").values()
    d = next(d for d in v.diagnoses if d.id == "half-mse")
    assert d.where == "dL/dw2 (f1)" and (d.worked, d.yours) == ("-2", "-1")


def test_rounded_answers_must_be_nearer_the_right_answer_than_a_wrong_method():
    from symreparam.check import Exercise

    # w = 1 - 1/1000 * 2 * (1 - 3) = 1.004: 'no step at all' (1) and lr twice (1.000004) are within 0.5%
    ex = Exercise(build_problem(models=["w*x"], init=["w=1"], data=["x=1,y=3"], lr="0.001"), "tiny")
    assert verdicts("w=1.004", exercise=ex)["w"].correct
    assert verdicts("w=1.0039", exercise=ex)["w"].correct
    for answer in ("w=1.00", "w=1", "w=1.000001"):
        v = verdicts(answer, exercise=ex)["w"]
        assert not v.correct and "too imprecise to tell from" in v.note and not v.diagnoses, answer
    # the value of a typical mistake, exactly: that mistake, and no other
    v = verdicts("w=1.000004", exercise=ex)["w"]
    assert not v.correct and not v.note and [d.id for d in v.diagnoses] == ["lr-twice"]
    # whole numbers are rounded answers too: 140 for 140.1 is three significant figures
    ex = Exercise(reference_problem(lr="1"), "lr 1")
    assert verdicts("w3=140", exercise=ex)["w3"].correct and verdicts("w3=140.", exercise=ex)["w3"].correct
    assert not verdicts("w3=1401/10 + 1/100", exercise=ex)["w3"].correct  # a fraction must be exact


def test_error_carried_forward():
    v = verdicts("w3=1.5", "slope2=15", "f2=15x+2.2", "w4=2.2", "ratio=10", "w1=2.4")
    assert v["w3"].status == "wrong"
    assert v["slope2"].status == "consistent" and v["slope2"].consistent_with == ("w3",)
    assert v["f2"].status == "consistent" and v["f2"].consistent_with == ("w3",)
    assert v["ratio"].status == "consistent" and v["ratio"].consistent_with == ("w3",)
    # a wrong later answer that does not follow from the earlier one is just wrong
    v = verdicts("w3=1.5", "slope2=16")
    assert v["slope2"].status == "wrong" and not v["slope2"].consistent_with
    # from a function the student wrote to its slope
    v = verdicts("f2=16x+2.2", "f2.end.slope=16")
    assert v["f2.end.slope"].status == "consistent" and v["f2.end.slope"].consistent_with == ("f2",)


@pytest.mark.parametrize("answer, right", [
    ("w1=2.389", True), ("w1=2.387", False),  # 0.5% of 2.4 is 0.012
    ("w1=2399/1000", False),  # written exactly, so it must be exact
    ("w2=2.2", True), ("w2=11/5", True), ("w2=2.19", True), ("w2=2.18", False),
])
def test_tolerance_boundary(answer, right):
    (v,) = verdicts(answer).values()
    assert v.correct is right


def test_symbolic_learning_rate_answers_are_polynomials():
    exercise = reference_exercise()
    from symreparam.check import Exercise

    problem = reference_problem(lr="eta")
    ex = Exercise(problem, "eta")
    v = verdicts("w1=1+14eta", "w3=1/10+140 eta", "f1=(1+14eta)x + 2 + 2eta", exercise=ex)
    assert all(x.correct for x in v.values())
    v = verdicts("w1=1+7eta", exercise=ex)
    assert "half-mse" in [d.id for d in v["w1"].diagnoses]
    del exercise


def test_nonlinear_models_get_diagnoses_too():
    from symreparam.check import Exercise

    problem = build_problem(models=["exp(2*s)*x + t"], init=["s=0", "t=0"], data=["x=1,y=2"])
    # r = 1 - 2 = -1; df/ds = 2 exp(2s) x = 2, df/dt = 1; mse: s = 0 + 1/10 * 2 * 1 * 2 = 2/5
    v = verdicts("s=2/5", "t=1/5", exercise=Exercise(problem, "exp"))
    assert v["s"].correct and v["t"].correct
    v = verdicts("s=1/5", exercise=Exercise(problem, "exp"))  # the factor 2 of exp(2s) dropped, or half-mse
    assert {"chain-rule-factor", "half-mse"} <= {d.id for d in v["s"].diagnoses}


@pytest.mark.parametrize("answers, message", [
    ([], "give at least one answer"),
    (["q=1"], "--answer q: unknown name 'q'; answer one of: w1, w2, w3, w4, slope2, ratio, f1, f2"),
    (["w1=2x"], "--answer w1: unknown name 'x'"),
    (["f2=141t+2"], "--answer f2: unknown name 't'; use one of: x"),
    (["w1=__import__('os')"], "--answer w1:"),
    (["w3=14,1"], "write decimals with '.'"),
    (["w1 2.4"], "expected NAME=VALUE"),
    (["w1=2.4", "w1=2"], "--answer w1: is given twice"),
    (["f2=141x+"], "--answer f2:"),
    (["w1=9**9**9"], "--answer w1:"),
])
def test_unusable_answers_are_one_line(answers, message):
    args = ["check"] + [x for a in answers for x in ("--answer", a)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_cli_exit_codes_and_text():
    assert run("check", "--answer", "w1=2.4", "--answer", "f2=141x+11/5").exit_code == 0
    out = " ".join(run("check", "--answer", "w3=1.5", "--answer", "slope2=15", code=1).output.split())
    assert "w3 = 1.5: not correct." in out and "forgot the chain-rule factor" in out
    assert "leaves the worked solution at the chain rule: with this mistake dL/dw3 (f2) is -14." in out
    assert "slope2 = 15: not correct, but it follows correctly from your answer w3" in out
    assert "141/10" not in out and "-140" not in out  # neither the answer nor its working is given away...
    shown = " ".join(run("check", "--answer", "w3=1.5", "--show-answers", code=1).output.split())
    assert "The answer is 141/10." in shown and "is -14 (-140 in the worked solution)" in shown  # ... unless asked


def test_cli_json_and_answer_files(tmp_path):
    (tmp_path / "a.toml").write_text('w1 = 2.4\nw3 = "3/2"\nf2 = "141x + 11/5"\n')
    doc = json.loads(run("check", "--answers", str(tmp_path / "a.toml"), "--format", "json", code=1).output)
    assert [a["correct"] for a in doc["answers"]] == [True, False, True]
    assert doc["answers"][1]["mistakes"][0]["id"] == "chain-rule-factor" and "expected" not in doc["answers"][1]
    (tmp_path / "a.json").write_text('{"w1": 2.4, "w2": "11/5"}')
    doc = json.loads(run("check", "--answers", str(tmp_path / "a.json"), "--format", "json").output)
    assert doc["correct"] == 2 and doc["verification"]["max_rel_error"] < 1e-12
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert "expected a table of answers" in run("check", "--answers", str(tmp_path / "bad.json"), code=2).output
    # JSON keeps the last of a repeated key: the first answer would vanish unseen
    (tmp_path / "twice.json").write_text('{"w1": 2.4, "w1": 3}')
    out = run("check", "--answers", str(tmp_path / "twice.json"), code=2).output
    assert "--answers twice.json: w1: is given twice; keep one answer" in out
    (tmp_path / "twice.toml").write_text('"f1.w1.1" = 1\n[f1.w1]\n1 = 2\n')
    out = run("check", "--answers", str(tmp_path / "twice.toml"), code=2).output
    assert "--answers twice.toml: f1.w1.1: is given twice; keep one answer" in out


def test_dotted_names_in_toml_answer_files(tmp_path):
    # TOML reads dotted keys as nested tables; they are the dotted answer names again
    (tmp_path / "a.toml").write_text('w1 = 2.4\nf1.w1.1 = "12/5"\n[f2.w3]\n1 = 1.5\n')
    doc = json.loads(run("check", "--answers", str(tmp_path / "a.toml"), "--format", "json", code=1).output)
    assert [(a["name"], a["correct"]) for a in doc["answers"]] == [("w1", True), ("f1.w1.1", True), ("f2.w3.1", False)]


def test_check_a_problem_given_by_flags_or_file(tmp_path):
    out = run("check", "--model", "w*x", "--init", "w=1", "--data", "x=1,y=3", "--answer", "w=7/5").output
    assert "w = 7/5: correct." in out
    (tmp_path / "p.toml").write_text('models = ["w*x"]\ninit = {w = 1}\ndata = [{x = 1, y = 3}]\n')
    assert "1 of 1 correct" in run("check", str(tmp_path / "p.toml"), "--answer", "w=1.4").output


def test_check_a_generated_variant(tmp_path):
    """Every answer in a variant's JSON is right when checked against that variant."""
    out = tmp_path / "hw"
    run("generate", "reparam-one-step", "-n", "3", "--seed", "11", "--out", str(out), "-q")
    record = json.loads((out / "variant-3.json").read_text())
    # the sheet tells the student what to give check
    assert "Variant 3, seed 11" in (out / "sheet-3.tex").read_text()
    args = ["check", "--family", "reparam-one-step", "--seed", "11", "--variant", "3"]
    for qid, value in record["questions"].items():
        args += ["--answer", f"{qid}={value}"]
    assert f"{len(record['questions'])} of {len(record['questions'])} correct" in run(*args).output
    # and each mistake recorded for it is diagnosed as that mistake
    for mistake_id, values in record["mistakes"].items():
        for key, value in values.items():
            qid = next((q for q, k in [(q, _key(record, q)) for q in record["questions"]] if k == key), None)
            if qid is None:
                continue
            result = CliRunner().invoke(cli, [*args[:7], "--answer", f"{qid}={value}", "--format", "json"])
            doc = json.loads(result.output)
            assert mistake_id in [m["id"] for m in doc["answers"][0]["mistakes"]], (mistake_id, key)


def _key(record, qid):
    from symreparam import family

    fam = family.load(family.find("reparam-one-step"))
    return next(q.answer for q in fam.questions if q.id == qid)


def test_a_zero_padded_variant_number_is_flagged():
    # sheet-03.tex is variant 3; '03' could be a student id, so the header says how it was read
    out = run("check", "--family", "reparam-one-step", "--seed", "2026", "--variant", "03", "--answer", "w1=1",
              code=1).output
    assert "variant 03 (read as a student id; for numbered variant 3 give --variant 3)" in out


def test_family_check_refusals():
    result = CliRunner().invoke(cli, ["check", "--family", "reparam-one-step", "--answer", "w1=0"])
    assert result.exit_code == 2 and "give --seed and --variant" in result.output
    result = CliRunner().invoke(cli, ["check", "--seed", "3", "--answer", "w1=0"])
    assert result.exit_code == 2 and "--seed: picks a variant of a family: add --family NAME" in result.output
    result = CliRunner().invoke(cli, ["check", "--variant", "3", "--answer", "w1=0"])
    assert result.exit_code == 2 and "--variant: picks a variant of a family" in result.output
    result = CliRunner().invoke(cli, ["check", "--family", "reparam-one-step", "--fixed", "reference", "--seed", "5",
                                      "--answer", "w1=0"])
    assert result.exit_code == 2 and "--fixed: a fixed variant has no seed or variant number" in result.output
    result = CliRunner().invoke(cli, ["check", "--exercises", ".", "--answer", "w1=0"])
    assert result.exit_code == 2 and "--exercises: is where --family looks" in result.output
    result = CliRunner().invoke(cli, ["check", "--family", "nope", "--answer", "w1=0"])
    assert result.exit_code == 2 and result.output.startswith("Error: --family: unknown family 'nope'")


def test_library_errors_are_symreparam_errors():
    with pytest.raises(SymreparamError):
        check_answers(reference_exercise(), [("w1", "open('x')")])


# --- untrusted input: random and hostile strings through the whole checker ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from test_parse import HOSTILE, HOSTILE_BLOCKS  # noqa: E402

_CHECKER = None


def _checker():
    global _CHECKER
    if _CHECKER is None:
        from symreparam.check import Checker

        _CHECKER = Checker(reference_exercise())
    return _CHECKER


def _check_quietly(text: str) -> None:
    """Any string, as a number answer, a function answer and a whole NAME=VALUE item: only our own error
    may come out, and it comes out fast."""
    import time

    checker = _checker()
    for attempt in (lambda: checker.check([("w3", text)]), lambda: checker.check([("f2", text)]),
                    lambda: checker.check([split_answer(text)])):
        start = time.process_time()
        try:
            report = attempt()
        except SymreparamError as error:
            assert "\n" not in str(error)
        else:
            assert len(report.verdicts) == 1
        assert time.process_time() - start < 1.0, text[:80]


@pytest.mark.parametrize("text", HOSTILE_BLOCKS)
def test_hostile_blocks_through_the_checker(text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _check_quietly(text)
    _check_quietly(f"__import__('os').system('touch pwned') or {text}")
    assert not (tmp_path / "pwned").exists()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_answers_300(text):
    _check_quietly(text)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_answers_10000(text):
    _check_quietly(text)


def test_megabyte_answers_are_refused_at_once():
    _check_quietly("1" * 1_000_000)
    _check_quietly("(" * 1_000_000)


def test_a_mistake_that_depends_on_the_number_of_points():
    # two points, mse: c' = 1, r = (1, 1), dL/dw1 = 1*1 + 1*2 = 3: w1 = 1 - 3/10 = 0.7; summed: 6, so 0.4
    out = run("check", "--data", "x=1,y=2", "--data", "x=2,y=3", "--answer", "w1=0.4", code=1).output
    assert "summed the squared errors instead of averaging them" in " ".join(out.split())


@pytest.mark.parametrize("answer, exercise_lr", [
    ("f1.max_lr=4/(7+3*sqrt(5))", None),  # not that value, but a radical form must be compared exactly
    ("w1=(1-196eta^2)/(1-14eta)", "eta"),  # 1 + 14 eta, written as a quotient
])
def test_exact_answers_in_other_forms(answer, exercise_lr):
    from symreparam.check import Exercise

    ex = Exercise(reference_problem(lr=exercise_lr), "x") if exercise_lr else None
    (v,) = verdicts(answer, exercise=ex).values()
    if exercise_lr:
        assert v.correct and v.exact
    else:
        assert not v.correct  # 4/(7 + 3 sqrt 5) = 7 - 3 sqrt 5, not 1/50
    # and a radical answer that is right, in a problem whose rate is irrational
    from symreparam.check import Exercise as Ex

    ex = Ex(reference_problem(lr="sqrt(2)/100"), "irrational")
    (v,) = verdicts("w1=1 + 14/(50*sqrt(2))", exercise=ex).values()
    assert v.correct and v.exact  # 1 + 14 sqrt(2)/100, its denominator not rationalised


def test_check_names_only_the_mistakes_a_generated_variant_lists(tmp_path):
    # in variants with r = 0, dropping the chain-rule factor has an answer of its own in the concrete
    # problem, which the family (r symbolic) does not derive; check must stay with the manifest's list
    from symreparam import family
    from symreparam.check import family_exercise

    out = tmp_path / "hw"
    run("generate", "general-linear-reparam", "-n", "5", "--seed", "5", "--format", "json", "--out", str(out), "-q")
    fam = family.load(family.find("general-linear-reparam"))
    for v in range(1, 6):
        record = json.loads((out / f"variant-{v}.json").read_text())
        assert family_exercise(fam, seed="5", ident=str(v)).mistakes == set(record["mistakes"])
    (v,) = verdicts("u=-116/75", exercise=family_exercise(fam, seed="5", ident="3")).values()
    assert [d.id for d in v.diagnoses] == ["x-left-out"]
