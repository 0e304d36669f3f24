"""The command line. The only module that talks to the terminal, reads flags or exits.

Library modules raise :class:`~symreparam.errors.SymreparamError`; here each becomes one
``Error: ...`` line on stderr and its exit code. Heavy imports (SymPy, NumPy) happen inside the
commands so that ``--help`` stays instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Our matrices are tiny: an OpenBLAS thread pool buys nothing and costs ~50 ms of start-up, a third of
# the whole budget of ``symreparam solve``. Set before NumPy is imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Python refuses to print integers of more than 4300 digits (a guard for parsing untrusted digit
# strings, which our parser bounds at 40 characters); exact answers are bounded near 4000 digits, and a
# derived value a little longer must print, not crash.
if hasattr(sys, "set_int_max_str_digits") and 0 < sys.get_int_max_str_digits() < 20_000:  # 0: no limit
    sys.set_int_max_str_digits(20_000)

import click  # noqa: E402

from symreparam import __version__  # noqa: E402

EXIT_INTERNAL = 70


class _Group(click.Group):
    """Turns library errors and click's own usage errors into one line and an exit code, never a
    traceback or a usage screen."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx):
        from symreparam.errors import SymreparamError

        try:
            return super().invoke(ctx)
        except SymreparamError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            # the reader stopped early (`symreparam list | head -1`): its choice, not a failure. Output
            # still buffered would fail again at exit, so it goes nowhere instead.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):  # no real stdout (a test runner)
                pass
            ctx.exit(0)
        except Exception as exc:  # a bug: say so plainly, keep the traceback for developers
            if os.environ.get("SYMREPARAM_DEBUG"):
                raise
            click.echo(f"Internal error: {exc.__class__.__name__}: {exc}. This is a bug in symreparam; "
                       "please report it with the command you ran (SYMREPARAM_DEBUG=1 shows the traceback).",
                       err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(__version__, prog_name="symreparam")
@click.pass_context
def cli(ctx) -> None:
    """Exact gradient descent under reparameterisation, for machine-learning teaching.

    \b
    symreparam solve                      the reference exercise, worked step by step
    symreparam solve problem.toml         your own problem (schema in the README)
    symreparam list                       the exercise families
    symreparam generate FAMILY -n 30      homework variants, answer keys, PDFs, Moodle quizzes
    symreparam check --answer w1=2.4      check your answers to the reference exercise
    symreparam COMMAND --help             every option of a command, with examples
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _problem_options(command):
    """The options that pose a problem, shared by ``solve`` and ``check``."""
    options = [
        click.argument("problem_file", required=False, type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--model", "models", multiple=True, metavar="EXPR",
                     help="A model in inputs and parameters, e.g. 'w1*x + w2'. Repeat for several models."),
        click.option("--init", "init", multiple=True, metavar="NAME=VALUE",
                     help="Initial value of a parameter, e.g. w3=0.1 (exact: 0.1 is 1/10). Repeat per parameter."),
        click.option("--data", "data", multiple=True, metavar="x=7,y=10",
                     help="One data point: its inputs and the target y. Repeat per point."),
        click.option("--lr", default=None, metavar="RATE",
                     help="Learning rate: a number (0.1, 1/50) or a symbol (eta). [default: 0.1]"),
        click.option("--steps", default=None, metavar="T", help="Number of gradient steps. [default: 1]"),
        click.option("--loss", default=None, type=click.Choice(["mse", "half-mse", "sse"]),
                     help="mse = mean of (f-y)^2, half-mse = half of that, sse = sum of (f-y)^2. [default: mse]"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _given_flags(models, init, data, lr, steps, loss) -> dict:
    """The problem flags given on the command line, by name."""
    # An empty --lr '' is an error to report, not a flag to ignore: only absent flags fall through.
    flags = {"lr": lr, "steps": steps, "loss": loss, "models": list(models), "init": list(init), "data": list(data)}
    return {key: value for key, value in flags.items() if value is not None and value != []}


def _build_problem(problem_file, models, init, data, lr, steps, loss):
    """The problem a command's flags (and problem file) describe; None when they describe nothing but
    the reference exercise."""
    from symreparam.errors import SymreparamError
    from symreparam.problem import REFERENCE, Origin, build_problem, read_problem_file

    flags = _given_flags(models, init, data, lr, steps, loss)
    if problem_file is None and not flags:
        return None
    if "init" in flags and "models" not in flags:
        flags["init"] = None  # merged name by name below, so one value can be changed on its own
    if problem_file is not None:
        fields = read_problem_file(problem_file)
        origin = Origin(problem_file.name, frozenset(flags))
    elif "models" in flags:
        # The reference's parameters and data mean nothing for a model of your own.
        fields = {"models": [], "init": [], "data": []}
        origin = Origin()
    else:
        fields = dict(REFERENCE)
        origin = Origin()
    if flags.get("init", ()) is None:
        flags["init"] = _merge_init(fields["init"], init)
    try:
        return build_problem(**{**fields, **flags}, origin=origin)
    except SymreparamError as exc:
        if problem_file is not None and "models" in flags and "init" not in flags:
            raise type(exc)(exc.field, f"{exc.message} (--model replaced the file's models: give --init for "
                            "their parameters)") from None
        raise


@cli.command()
@_problem_options
@click.option("--format", "fmt", default="text", show_default=True,
              type=click.Choice(["text", "latex", "markdown", "json"]), help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write to this file instead of standard output ('-' is standard output).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of your own templates (solve.tex, solve.md) overriding the bundled ones.")
def solve(problem_file, models, init, data, lr, steps, loss, fmt, output, force, templates) -> None:
    """Solve a gradient-descent problem exactly and check it against NumPy.

    With no arguments it solves the reference exercise: f1(x) = w1*x + w2 from (1, 2) and
    f2(x) = 10*w3*x + w4 from (0.1, 2), one point (7, 10), one step at learning rate 0.1 on the
    mean squared error. Flags override the reference (or the problem file) field by field; when you
    give --model, give --init and --data too.

    \b
    Examples:
      symreparam solve
      symreparam solve --lr eta --format json
      symreparam solve --loss half-mse --steps 3
      symreparam solve --model '(u+v)*x + (u-v)' --init u=1 --init v=0 --data x=1,y=2 --data x=2,y=5
      symreparam solve problem.toml --format latex -o answer.tex
    """
    from symreparam.errors import SymreparamError
    from symreparam.problem import reference_problem
    from symreparam.render import render
    from symreparam.solution import solve as solve_problem

    if templates is not None and fmt not in ("latex", "markdown"):
        raise SymreparamError("--templates", f"--format {fmt} uses no templates; add --format latex or markdown")
    problem = _build_problem(problem_file, models, init, data, lr, steps, loss) or reference_problem()
    solution = solve_problem(problem)
    _emit(render(solution, fmt, templates), output, force)


@cli.command()
@_problem_options
@click.option("--answer", "answers", multiple=True, metavar="NAME=VALUE",
              help="One answer, e.g. w1=2.4 or 'f2=141x+2.2' (LaTeX and 2x, ^, unicode minus accepted). Repeat.")
@click.option("--answers", "answers_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A TOML or JSON file of answers, NAME = VALUE.")
@click.option("--family", "family_name", default=None, metavar="FAMILY",
              help="Check a variant of an exercise family (with --seed and --variant, as printed on the sheet).")
@click.option("--seed", default=None, help="The seed the family's variants were generated with.")
@click.option("--variant", default=None, metavar="ID", help="The variant's id (its number, or the student's id).")
@click.option("--fixed", default=None, metavar="NAME", help="A fixed variant of the family, e.g. reference.")
@click.option("--exercises", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of your own families.")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="Output format.")
@click.option("--show-answers", is_flag=True, help="Also show the right answer to every wrong one.")
def check(problem_file, models, init, data, lr, steps, loss, answers, answers_file, family_name, seed, variant,
          fixed, exercises, fmt, show_answers) -> None:
    """Check answers: right or wrong, exactly; which typical mistake a wrong one comes from; and whether it
    follows from your own earlier answer.

    With no exercise given it checks answers to the reference exercise (names: w1, w2, w3, w4, f1, f2,
    slope2, ratio). Otherwise name a family variant (--family, --seed, --variant), a problem file, or the
    same flags as solve. Answers are exact (fractions, 12/5 x + 11/5) or decimals, accepted within
    0.5% (three significant figures). Exit code 0: all right; 1: some wrong; 2: unusable input.

    \b
    Examples:
      symreparam check --answer w1=2.4 --answer w3=1.5 --answer 'f2=15x+2.2'
      symreparam check --family reparam-one-step --seed 2026 --variant 3 --answer w1=18/25
      symreparam check problem.toml --answers my-answers.toml --format json
    """
    from symreparam import check as checking
    from symreparam import family as families
    from symreparam.errors import SymreparamError
    from symreparam.render import render_check

    pairs = [checking.split_answer(item) for item in answers]
    if answers_file is not None:
        pairs += checking.read_answers(answers_file)
    posed = problem_file is not None or bool(_given_flags(models, init, data, lr, steps, loss))
    if family_name is not None and posed:
        raise SymreparamError("--family", "give either a family variant or a problem (file or flags), not both")
    problem = _build_problem(problem_file, models, init, data, lr, steps, loss)
    if family_name is not None:
        family = families.load(families.find(family_name, exercises, "--family"))
        if fixed is not None and (seed is not None or variant is not None):
            raise SymreparamError("--fixed", "a fixed variant has no seed or variant number; drop --seed and "
                                  "--variant, or --fixed")
        if fixed is None and (seed is None or variant is None):
            raise SymreparamError("--family", "give --seed and --variant as printed on the sheet (or --fixed NAME)")
        if seed is not None:
            _check_seed(seed)
        exercise = checking.family_exercise(family, seed=seed, ident=variant, fixed=fixed)
    elif seed is not None or variant is not None or fixed is not None:
        given = next(flag for flag, x in (("--seed", seed), ("--variant", variant), ("--fixed", fixed)) if x is not None)
        raise SymreparamError(given, "picks a variant of a family: add --family NAME (as printed on the sheet)")
    elif exercises is not None:
        raise SymreparamError("--exercises", "is where --family looks for your own families: add --family NAME")
    elif problem is not None and problem_file is None and not models and str(steps or "1").strip() == "1":
        # the reference with other numbers: its questions (w1 ... slope2, ratio) still make sense
        exercise = checking.Exercise(problem, "the reference exercise with your changes",
                                     checking.reference_exercise().questions,
                                     "`symreparam solve` with the same flags prints it")
    elif problem is not None:
        exercise = checking.Exercise(problem, problem_file.name if problem_file is not None else "your problem")
    else:
        exercise = checking.reference_exercise()
    report = checking.check_answers(exercise, pairs)
    click.echo(render_check(report, fmt, show_answers), nl=False)
    sys.exit(0 if report.all_correct else 1)


@cli.command("list")
@click.option("--exercises", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A folder of your own families (TOML), listed before the bundled ones.")
def list_families(exercises) -> None:
    """List the exercise families, one line each.

    \b
    Examples:
      symreparam list
      symreparam list --exercises my-families/
    """
    from symreparam import family

    for path in family.available(exercises):
        fam = family.load(path)
        click.echo(f"{fam.name:24s} {fam.summary}")


@cli.command()
@click.argument("family_name", metavar="FAMILY")
@click.option("--variants", "-n", default=1, show_default=True, type=click.IntRange(1, 100_000),
              help="How many variants to draw.")
@click.option("--seed", default="0", show_default=True, help="Seed of the draws; the same seed gives the same files.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: FAMILY-seedSEED].")
@click.option("--format", "fmt", default="tex,json", show_default=True, metavar="LIST",
              help="Comma-separated: tex, pdf, md, json, moodle (one Moodle XML quiz).")
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with columns id,name: one variant per student, drawn from the id and the seed.")
@click.option("--fixed", default=None, metavar="NAME",
              help="Generate a fixed variant of the family (e.g. 'reference') instead of random draws.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of your own templates overriding the bundled ones by name.")
@click.option("--exercises", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of your own families (a FAMILY given as a .toml path works too).")
@click.option("--force", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def generate(family_name, variants, seed, out_dir, fmt, roster, fixed, templates, exercises, force, quiet) -> None:
    """Generate homework variants: problem sheets, answer keys, booklets and a manifest.

    Every variant is solved exactly and checked against NumPy before anything is written; a variant
    that fails a check or a constraint is redrawn. The same family, seed and versions give
    byte-identical files.

    \b
    Examples:
      symreparam generate reparam-one-step --variants 30 --seed 2026 --format tex,pdf
      symreparam generate stability --roster class.csv --seed 7 --out week5 --format pdf,md
      symreparam generate reparam-one-step --fixed reference --format tex,pdf,md,json
    """
    from symreparam import family as families
    from symreparam import generate as gen
    from symreparam.folders import check_target

    formats = gen.parse_formats(fmt)
    _refuse_ignored(variants=variants, roster=roster, fixed=fixed, seed=seed, templates=templates, formats=formats)
    fam = families.load(families.find(family_name, exercises))
    request = gen.Request(
        family=fam,
        variants=variants,
        seed=str(seed),
        formats=formats,
        roster=gen.read_roster(roster) if roster is not None else (),
        fixed=fixed,
        templates=templates,
    )
    out_dir = out_dir if out_dir is not None else Path(f"{fam.name}-seed{_slug_seed(seed)}")
    check_target(out_dir, force)
    show = not quiet and sys.stderr.isatty()
    bar = _Progress() if show else None
    try:
        output = gen.generate(request, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    gen.write_output(out_dir, output, force=force)
    if not quiet:
        n = len(output.variants)
        click.echo(f"wrote {len(output.files)} files for {n} variant{'s' if n != 1 else ''} of {fam.name} to "
                   f"{out_dir} ({output.redraws} draw{'s' if output.redraws != 1 else ''} rejected and redrawn)",
                   err=True)


def _refuse_ignored(*, variants, roster, fixed, seed, templates, formats) -> None:
    """Options that this combination would silently ignore are refused instead: a user who typed them
    expects them to matter."""
    from symreparam.errors import SymreparamError

    source = click.get_current_context().get_parameter_source("variants")
    if source is click.core.ParameterSource.COMMANDLINE and (roster is not None or fixed is not None):
        why = "--roster gives one variant per student" if roster is not None else "--fixed makes exactly one"
        raise SymreparamError("--variants", f"{why}; drop --variants")
    if roster is not None and fixed is not None:
        raise SymreparamError("--fixed", "--fixed makes one variant and --roster one per student; use one of them")
    if fixed is not None and click.get_current_context().get_parameter_source("seed") is \
            click.core.ParameterSource.COMMANDLINE:
        raise SymreparamError("--seed", "a fixed variant is the same whatever the seed; drop --seed")
    _check_seed(seed)
    if templates is not None and set(formats) <= {"json"}:
        raise SymreparamError("--templates", "--format json uses no templates; add tex, pdf, md or moodle")


def _check_seed(seed: str) -> None:
    """A seed is printed on every sheet: it must be there to see, and fit on a line."""
    from symreparam.errors import SymreparamError
    from symreparam.printing import unprintable

    if not str(seed).strip():
        raise SymreparamError("--seed", "empty; give any word or number, e.g. --seed 2026")
    bad = unprintable(seed, one_line=True)
    if bad:
        raise SymreparamError("--seed", f"holds the control character {bad}, which no sheet can print; remove it")
    if len(seed) > 64:
        raise SymreparamError("--seed", f"{len(seed)} characters long; use at most 64, e.g. --seed 2026")


def _slug_seed(seed: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(seed))[:40] or "0"


class _Progress:
    """A click progress bar on stderr, one per stage."""

    def __init__(self):
        self.stage = None
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(length=total, label=stage, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _merge_init(base, items) -> dict[str, str]:
    """Initial values of the file or reference, with --init flags replacing them name by name."""
    from symreparam.errors import SymreparamError
    from symreparam.parse import split_assignment

    merged = dict(base) if isinstance(base, dict) else dict(split_assignment(b, "--init") for b in base)
    given: set[str] = set()
    for item in items:
        name, value = split_assignment(item, "--init")
        if name in given:
            raise SymreparamError("--init", f"{name} is given twice")
        given.add(name)
        merged[name] = value
    return merged


def _emit(content: str, output: str | None, force: bool) -> None:
    """Print (no --output, or '-' exactly as typed: ./- is a file), or write a file atomically without
    clobbering an existing one unless --force."""
    if output is None or output == "-":
        click.echo(content, nl=False)
        return
    from symreparam.files import write_text

    write_text(Path(output), content, force=force, field="--output")
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Console-script entry point.

    The command's work is done once it returns: tearing down the interpreter would then spend about
    100 ms freeing SymPy's objects one by one, a fifth of the whole run, for nothing. So the output is
    flushed and the process ends at once, unless a child process is still running (multiprocessing
    would join it at exit; the generator's workers are always joined before it returns) or a
    developer is debugging. Everything symreparam writes is closed before the command returns.
    """
    try:
        cli(prog_name="symreparam")
        code = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):  # sys.exit("message") or sys.exit(None)
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    multiprocessing = sys.modules.get("multiprocessing")
    if os.environ.get("SYMREPARAM_DEBUG") or (multiprocessing is not None and multiprocessing.active_children()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away: nothing left to say to it
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
