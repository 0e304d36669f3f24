"""The command line through click's CliRunner: output, the JSON contract, files and every refusal."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy as sp

from conftest import run

from symreparam.cli import cli


def test_solve_without_arguments_is_the_reference_exercise():
    out = run("solve").output
    assert "f1(x) = 12*x/5 + 11/5" in out
    assert "f2(x) = 141*x + 11/5" in out
    assert "dL/dw3 = 2 * (-1) * 70 = -140" in out
    assert "P = A A^T = [[100, 0], [0, 1]]" in out
    assert "slope (x)    7/5  140  100" in out
    assert "converges from every start iff 0 < lr < 1/4901" in " ".join(out.split())


def test_json_contract_reads_back_exactly():
    doc = json.loads(run("solve", "--format", "json").output)
    assert doc["loss"] == "mse" and doc["lr"] == "1/10" and doc["steps"] == 1
    assert doc["data"] == [{"x": "7", "y": "10"}]
    f1, f2 = doc["models"]
    assert f2["expression"] == "10*w3*x + w4"
    assert f2["params"] == {"w3": {"initial": "1/10", "final": "141/10"}, "w4": {"initial": "2", "final": "11/5"}}
    assert sp.sympify(f1["function_final"]) == sp.sympify("12*x/5 + 11/5")
    assert f1["function_initial"] == "x + 2"
    assert f1["gram_matrix"] == [["50"]] and f2["gram_matrix"] == [["4901"]]
    assert f1["max_stable_lr"] == "1/50" and f2["max_stable_lr"] == "1/4901"
    assert f1["limit"] == {"w1": "57/50", "w2": "101/50"}
    assert f1["newton"] is None and f1["function_newton"] is None
    assert 0 <= f1["verification"]["max_rel_error"] < 1e-12
    assert doc["comparison"]["ratios"]["f2"] == {"slope": "100", "bias": "1"}
    assert doc["comparison"]["same_function_class"] is True
    for key in ("expression", "params", "function_initial", "function_final", "gram_matrix", "max_stable_lr",
                "limit", "function_limit", "verification"):
        assert key in f1


def test_limit_reached_says_whether_the_rate_goes_there():
    doc = json.loads(run("solve", "--format", "json").output)
    assert [m["limit_reached"] for m in doc["models"]] == [False, False]  # lr 1/10 diverges for both
    doc = json.loads(run("solve", "--format", "json", "--lr", "1/100").output)
    assert [m["limit_reached"] for m in doc["models"]] == [True, False]  # 1/100 < 1/50 but > 1/4901
    doc = json.loads(run("solve", "--format", "json", "--lr", "eta").output)
    assert [m["limit_reached"] for m in doc["models"]] == [None, None]


def test_symbolic_learning_rate_in_json():
    doc = json.loads(run("solve", "--lr", "eta", "--format", "json").output)
    eta = sp.Symbol("eta")
    assert sp.sympify(doc["models"][1]["params"]["w3"]["final"]) == sp.Rational(1, 10) + 140 * eta
    assert doc["models"][1]["lr_behaviour"] is None


def test_flags_override_the_reference_one_by_one():
    out = run("solve", "--loss", "half-mse", "--init", "w1=0").output
    assert "from w1 = 0, w2 = 2" in out  # the other initial values stay
    assert "w3 <- 1/10 - 1/10 * (-70) = 71/10" in out


def test_markdown_and_latex_formats():
    md = run("solve", "--format", "markdown").output
    assert md.startswith("# Gradient descent") and "$f_{2}" in md
    tex = run("solve", "--format", "latex").output
    assert tex.startswith("\\documentclass") and tex.rstrip().endswith("\\end{document}")
    assert "\\VAR{" not in tex and "\\BLOCK{" not in tex


def test_problem_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('models = ["w1*x + w2", "10*w3*x + w4"]\nlr = 0.1\nsteps = 1\nloss = "mse"\n'
                    "[init]\nw1 = 1\nw2 = 2\nw3 = 0.1\nw4 = 2\n[[data]]\nx = 7\ny = 10\n")
    doc = json.loads(run("solve", str(path), "--format", "json").output)
    assert doc["lr"] == "1/10"  # the TOML float 0.1 is read from its text, exactly
    assert doc["models"][1]["params"]["w3"]["final"] == "141/10"
    doc = json.loads(run("solve", str(path), "--lr", "1/100", "--format", "json").output)
    assert doc["lr"] == "1/100"


def test_output_file_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "answer.json"
    run("solve", "--format", "json", "-o", str(out))
    first = out.read_text()
    result = run("solve", "-o", str(out), code=2)
    assert "already exists; pass --force" in result.output
    assert out.read_text() == first
    run("solve", "-o", str(out), "--force")
    assert out.read_text().startswith("Gradient descent")
    # '-' is standard output, as everywhere on the command line; a file called '-' only by a path
    text = run("solve").output
    assert run("solve", "-o", "-").output == text
    run("solve", "-o", str(tmp_path / "-"))
    assert (tmp_path / "-").read_text() == text


def test_templates_with_a_format_that_uses_none_are_refused(tmp_path):
    result = run("solve", "--templates", str(tmp_path), code=2)
    assert result.output == "Error: --templates: --format text uses no templates; add --format latex or markdown\n"


BAD = [
    (["--model", "open(x)", "--init", "a=1", "--data", "x=1,y=1"], "--model 1: unknown function 'open'"),
    (["--model", "w1*x + w2", "--init", "w1=1", "--data", "x=1,y=1"], "--init: no initial value for w2"),
    (["--init", "w5=1"], "--init: w5 appears in no model"),
    (["--data", "x=1"], "--data 1: missing y"),
    (["--data", "x=1,y=2,z=3"], "--data 1: z appears in no model"),
    (["--lr", "9**9**9"], "--lr: exponent 387420489 is too large"),
    (["--lr", "-1"], "--lr: the learning rate must be positive"),
    (["--lr", "1/0"], "--lr: "),
    (["--lr", "w1"], "--lr: the learning rate may not use w1"),
    (["--steps", "0"], "--steps: expected a whole number of steps"),
    (["--steps", "1e9"], "--steps: expected a whole number of steps"),
    (["--init", "w3=abc"], "--init w3: expected a number"),
    (["--init", "w3"], "--init: expected NAME=VALUE"),
    (["--model", "__import__('os').system('true')", "--init", "a=1", "--data", "x=1,y=1"], "--model 1: "),
    (["--model", "w1 x + w2", "--init", "w1=1", "--init", "w2=1", "--data", "x=1,y=1"], "did you mean w1*x?"),
    (["--model", "w*y", "--init", "w=1", "--data", "x=1,y=1"], "y is the target"),
    (["--model", "x", "--data", "x=1,y=1"], "has no parameters to train"),
    (["--model", "w*x", "--init", "w=1", "--data", "x=1,y=1", "--data", "z=1,y=2"], "--data 2: has inputs z"),
    (["missing.toml"], "missing.toml: no such file"),
    (["--model", "w*E + b", "--init", "w=1", "--init", "b=1", "--data", "x=1,y=1"], "--model 1: 'E' is a reserved name"),
    (["--model", "w*x", "--init", "w=1", "--data", "S=1,y=1"], "--data 1: 'S' is a reserved name"),
    (["--lr", "beta"], "--lr: 'beta' is a reserved name"),
    (["--model", "eta*x + b", "--init", "eta=1", "--init", "b=0", "--data", "x=1,y=1", "--lr", "eta"],
     "--lr: the learning rate may not use eta (a name of the model or data); use a new name such as lr"),
    # names the results use for the models, and names that cancel out
    (["--model", "f2*x + w", "--init", "f2=1", "--init", "w=0", "--data", "x=1,y=2"],
     "--model: f2 is what the results call a model; give it another name"),
    (["--lr", "f1"], "--lr: f1 is what the results call a model"),
    (["--model", "w*f1", "--init", "w=1", "--data", "f1=1,y=2"], "--data: f1 is what the results call a model"),
    (["--model", "0*w3 + w4*x", "--init", "w3=1", "--init", "w4=0", "--data", "x=1,y=2"],
     "--init: w3 cancels out of every model it appears in"),
    (["--model", "0*w*x + b", "--init", "w=1", "--init", "b=0", "--data", "x=1,y=2"],
     "--data 1: x cancels out of every model it appears in"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_input_gives_one_clear_line(args, message):
    result = run("solve", *args, code=2)
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]


@pytest.mark.parametrize("content, message", [
    ("models = [", "not valid TOML"),
    ('modles = ["a*x"]', "p.toml: modles: unknown key"),
    ('models = "w*x"\ninit = {w = 1}\ndata = [{x = 1, y = true}]', "p.toml: data[1].y: expected a number"),
    ('models = ["w*x"]\ninit = {w = 1}\ndata = [{x = 1}]', "p.toml: data[1]: missing y"),
    ('models = ["w*x"]\ninit = {w = "2**2**2**2**2"}\ndata = [{x = 1, y = 1}]', "exponent"),
])
def test_bad_problem_files(tmp_path, content, message):
    path = tmp_path / "p.toml"
    path.write_text(content)
    result = run("solve", str(path), code=2)
    assert message in result.output


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help and len(command.help) > 40, name
        out = run(name, "--help").output
        assert "Examples" in out or "Usage" in out


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "symreparam", "solve", "--format", "json"],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["models"][1]["params"]["w3"]["final"] == "141/10"


def test_a_reader_that_stops_early_is_not_an_error():
    # `symreparam list | head -1`: the closed pipe is the reader's choice; no message, exit code 0
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run([sys.executable, "-m", "symreparam", "list"], stdout=write, stderr=subprocess.PIPE,
                                timeout=120)
    finally:
        os.close(write)
    assert result.returncode == 0 and result.stderr == b""


def test_the_console_entry_flushes_everything_before_it_ends():
    # main() ends the process without the interpreter's slow teardown: the output must still be whole,
    # and the exit codes those of the command
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "symreparam", "solve", "--steps", "3", "--format", "json"],
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and json.loads(done.stdout)["steps"] == 3
    assert done.stdout == run("solve", "--steps", "3", "--format", "json").output.encode()
    bad = subprocess.run([sys.executable, "-m", "symreparam", "solve", "--lr", "x"], capture_output=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.decode().startswith("Error: --lr:") and bad.stdout == b""
