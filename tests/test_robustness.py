"""Hostile and awkward input to `solve`: one line, the right exit code, no hang, no lost file.

Each case here was once a traceback, a hang, a silent acceptance or a misleading message.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner
from conftest import run

from symreparam.cli import cli


def one_error_line(*args: str, code: int = 2) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args, message", [
    # click's own refusals are one line too, naming the option
    (["solve", "--loss", "mae"], "Invalid value for '--loss'"),
    (["solve", "-x"], "No such option '-x'"),
    (["solve", "--templates", "/no/such/folder"], "Invalid value for '--templates'"),
    (["solve", "a.toml", "b.toml"], "unexpected extra argument"),
    # empty and repeated values are reported, not ignored
    (["solve", "--lr", ""], "--lr: empty expression"),
    (["solve", "--init", "w1=5", "--init", "w1=6"], "--init: w1 is given twice"),
    (["solve", "--steps", "\uff13"], "--steps: expected a whole number of steps"),
    # learning rates that are not positive numbers
    (["solve", "--lr", "-eta"], "--lr: the learning rate -eta is not positive for every positive eta"),
    (["solve", "--lr", "1 - eta"], "is not positive for every positive eta"),
    (["solve", "--lr", "inf"], "--lr: 'inf' is a reserved name"),
    # names that would print the same, or as a power
    (["solve", "--model", "w1*x + w_1", "--init", "w1=1", "--init", "w_1=0", "--data", "x=1,y=2"],
     "the names w1 and w_1 would print the same"),
    (["solve", "--model", "b__c*x", "--init", "b__c=1", "--data", "x=1,y=2"], "double underscore"),
    (["solve", "--lr", "lambda"], "'lambda' is a Python keyword"),
    # a model that is undefined or has no derivative at the start is the starting values' fault
    (["solve", "--model", "log(w)*x", "--init", "w=0", "--data", "x=1,y=1"], "--init: f1 is not a finite real"),
    (["solve", "--model", "x/w", "--init", "w=0", "--data", "x=1,y=1"], "--init: f1 is not a finite real"),
    (["solve", "--model", "sqrt(w)*x", "--init", "w=0", "--data", "x=1,y=1"], "--init: f1 has no finite real derivative"),
    (["solve", "--model", "x**w", "--init", "w=1", "--data", "x=-2,y=4"], "--init: f1 has no finite real derivative"),
    (["solve", "--model", "abs(w)*x", "--init", "w=0", "--data", "x=1,y=1"], "which has no derivative where its argument is 0"),
    # ... and a step that leaves the domain is the learning rate's
    (["solve", "--model", "log(w) + b*x", "--init", "w=1", "--init", "b=0", "--data", "x=1,y=-100", "--lr", "1",
      "--steps", "2"], "--lr: f1 is not a finite real number at x = 1 after step 1"),
    # exact iterates that would be unreadable (or take minutes) are refused with the step count that works
    (["solve", "--model", "w**3*x", "--init", "w=1", "--data", "x=1,y=2", "--lr", "1/100", "--steps", "9"],
     "--steps: f1 is too large to handle exactly at x = 1 after step 5"),
    (["solve", "--model", "(w+x+1)**60", "--init", "w=0", "--data", "x=1,y=1"],
     "--lr: f1 is too large to handle exactly at x = 1 after step 1"),
    # values that would take SymPy hours are refused before it starts
    (["solve", "--model", "exp(exp(exp(a)))*x", "--init", "a=3", "--data", "x=1,y=100"],
     "--init: f1 is too large to handle exactly at x = 1 at the start (the argument of exp is too large"),
    (["solve", "--model", "2**w*x", "--init", "w=1000000000", "--data", "x=1,y=1"], "--init: f1 is too large"),
    (["solve", "--model", "exp(exp(a))*x", "--init", "a=1", "--data", "x=1,y=100", "--lr", "1"],
     "--lr: f1 is too large to handle exactly at x = 1 after step 1"),
    (["solve", "--model", "(a+b+c+d+g+h)**100*x", "--init", "a=1", "--init", "b=1", "--init", "c=1", "--init",
      "d=1", "--init", "g=1", "--init", "h=1", "--data", "x=1,y=1"], "--model 1: multiplies out to more than 2000 terms"),
    # the last step too must stay in the domain
    (["solve", "--model", "log(w)*x", "--init", "w=1", "--data", "x=1,y=-5", "--lr", "10"],
     "--lr: f1 is not a finite real number at x = 1 after step 1"),
    (["solve", "--model", "u*v*x", "--init", "u=1", "--init", "v=1", "--data", "x=7,y=10", "--lr", "eta",
      "--steps", "8"], "use at most 4 steps"),
    (["solve", "--lr", "0.00017", "--steps", "1000"], "use at most 832 steps"),
    # a model typo is reported before anything about the (missing) data
    (["solve", "--model", "bad("], "--model 1: could not read 'bad('"),
])
def test_refusals_are_one_line(args, message):
    assert message in one_error_line(*args)


def test_numbers_beyond_float_range_withhold_the_answer_with_a_reason():
    line = one_error_line("solve", "--model", "(w+x+1)**40", "--init", "w=0", "--data", "x=1,y=1", code=3)
    assert "beyond the float64 range" in line


def test_bare_command_prints_help_and_succeeds():
    result = CliRunner().invoke(cli, [], catch_exceptions=False)
    assert result.exit_code == 0 and "symreparam solve" in result.output and "check" in result.output


def test_a_model_with_no_inputs_fits_a_constant():
    doc = json.loads(run("solve", "--model", "w", "--init", "w=1", "--data", "y=3", "--format", "json").output)
    assert doc["models"][0]["params"]["w"]["final"] == "7/5"  # 1 - 1/10 * 2 * (1 - 3)


def test_divergent_runs_print_no_numpy_warnings():
    result = CliRunner().invoke(cli, ["solve", "--steps", "1000"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == ""


def test_irrational_rate_over_many_steps_is_exact_and_checked():
    doc = json.loads(run("solve", "--lr", "sqrt(2)/100", "--steps", "300", "--format", "json").output)
    # f1 converges (sqrt(2)/100 < 1/50) to its limit; after 300 steps it is there to many digits
    assert doc["models"][0]["lr_behaviour"] == "converges, oscillating"
    assert doc["verification"]["max_rel_error"] < 1e-12


@pytest.mark.slow
def test_symbolic_rate_over_many_steps_is_checked_without_cancellation():
    doc = json.loads(run("solve", "--lr", "eta", "--steps", "100", "--format", "json").output)
    assert doc["verification"]["max_rel_error"] < 1e-8


def test_compound_rate_is_parenthesised_in_the_working():
    out = run("solve", "--lr", "eta/2 + eta**2").output
    assert "w1 <- 1 - (eta**2 + eta/2) * (-14)" in out


# --- templates from someone else's folder run sandboxed ----------------------------------------------


@pytest.mark.parametrize("template, message", [
    ('{{ cycler.__init__.__globals__.os.popen("id").read() }}', "unsafe"),
    ("{% for i in range(10**9) %}{% endfor %}", "Range too big"),
    ('{% include "solve.md" %}', "includes or extends itself"),
    ("{{ nothing_here }}", "'nothing_here' is undefined"),
    # arithmetic is bounded too
    ("{{ 9**(9**10) }}", "powers above 100 are not allowed"),
    ("{{ 'x' * 10**9 }}", "repetitions longer than 100000"),
    ("{{ 1/0 }}", "ZeroDivisionError"),
])
def test_hostile_templates_are_refused(tmp_path, template, message):
    (tmp_path / "solve.md").write_text(template)
    assert message in one_error_line("solve", "--templates", str(tmp_path), "--format", "markdown")


def test_template_that_is_not_utf8(tmp_path):
    (tmp_path / "solve.md").write_bytes(b"\xff\xfe")
    assert "not UTF-8" in one_error_line("solve", "--templates", str(tmp_path), "--format", "markdown")


# --- problem files -----------------------------------------------------------------------------------


GOOD = 'models = ["w*x"]\ninit = {w = 1}\ndata = [{x = 1, y = 2}]\n'


@pytest.mark.parametrize("content, message", [
    (GOOD + "lr = inf\n", "p.toml: lr: inf is not a number"),
    (GOOD + "lr = nan\n", "p.toml: lr: nan is not a number"),
    (GOOD.replace("w = 1", "w = " + "9" * 5000), "p.toml: init w: expression is 5000 characters long"),
    (GOOD.replace("w = 1", "w = " + "9" * 50000), "p.toml: not usable TOML"),
    (GOOD + "lr = " + "[" * 3000 + "]" * 3000 + "\n", "p.toml"),
    (GOOD + "lr = [" + "1," * 50000 + "]\n", "expected a number or a string, got [1, 1"),
])
def test_bad_problem_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "p.toml"
    path.write_text(content)
    line = one_error_line("solve", str(path))
    assert message in line and len(line) < 400


def test_problem_file_encodings(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # a byte-order mark is fine
    assert "f1(x) = 6*x/5" in run("solve", str(path)).output
    path.write_bytes(GOOD.replace("w*x", "w*x  # caf\xe9").encode("latin-1"))
    assert "is not UTF-8 text (byte 0xe9" in one_error_line("solve", str(path))


def test_special_files_are_not_read(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    assert "is not a regular file" in one_error_line("solve", str(fifo))
    assert "is not a regular file" in one_error_line("solve", "/dev/zero")
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 1_100_000)
    assert "may be at most 1000000 bytes" in one_error_line("solve", str(big))


def test_model_flag_on_a_file_explains_the_missing_init(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(GOOD)
    assert "--model replaced the file's models" in one_error_line("solve", str(path), "--model", "a*x + b")


# --- output files -------------------------------------------------------------------------------------


def test_output_file_mode_follows_the_umask(tmp_path):
    target = tmp_path / "out.json"
    old = os.umask(0o022)
    try:
        run("solve", "--format", "json", "-o", str(target))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(target, 0o640)
    run("solve", "--format", "json", "-o", str(target), "--force")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # --force keeps the file's mode


def test_a_dangling_link_is_not_replaced(tmp_path):
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "nowhere")
    assert "already exists; pass --force" in one_error_line("solve", "-o", str(link))
    assert link.is_symlink()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_a_template_that_loops_too_long_is_stopped(tmp_path, monkeypatch):
    import symreparam.render as render

    monkeypatch.setattr(render, "TEMPLATE_SECONDS", 1)
    (tmp_path / "solve.md").write_text("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
                                       "{% endfor %}")
    assert "took more than 1 s" in one_error_line("solve", "--templates", str(tmp_path), "--format", "markdown")


def test_force_replaces_only_an_earlier_output(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "thesis.tex").write_text("precious")
    line = one_error_line("generate", "reparam-one-step", "--out", str(data), "--force")
    assert "is not an earlier symreparam output (it has no manifest.json)" in line
    assert (data / "thesis.tex").read_text() == "precious"


def test_an_output_folder_that_cannot_take_files_is_one_line():
    assert "--output: cannot write in /proc" in one_error_line("solve", "-o", "/proc/x.txt")
