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

import click  # noqa: E402

from symreparam import __version__  # noqa: E402

EXIT_INTERNAL = 70


class _Group(click.Group):
    """Turns library errors into one line and an exit code, never a traceback."""

    def invoke(self, ctx):
        from symreparam.errors import SymreparamError

        try:
            return super().invoke(ctx)
        except SymreparamError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback for developers
            if os.environ.get("SYMREPARAM_DEBUG"):
                raise
            click.echo(f"Internal error: {exc.__class__.__name__}: {exc}. This is a bug in symreparam; "
                       "please report it with the command you ran (SYMREPARAM_DEBUG=1 shows the traceback).",
                       err=True)
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="symreparam")
def cli() -> None:
    """Exact gradient descent under reparameterisation, for machine-learning teaching.

    \b
    symreparam solve                      the reference exercise, worked step by step
    symreparam solve problem.toml         your own problem (schema in the README)
    symreparam solve --help               every option, with examples
    """


@cli.command()
@click.argument("problem_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "models", multiple=True, metavar="EXPR",
              help="A model in inputs and parameters, e.g. 'w1*x + w2'. Repeat for several models.")
@click.option("--init", "init", multiple=True, metavar="NAME=VALUE",
              help="Initial value of a parameter, e.g. w3=0.1 (exact: 0.1 is 1/10). Repeat per parameter.")
@click.option("--data", "data", multiple=True, metavar="x=7,y=10",
              help="One data point: its inputs and the target y. Repeat per point.")
@click.option("--lr", default=None, metavar="RATE", help="Learning rate: a number (0.1, 1/50) or a symbol (eta). "
              "[default: 0.1]")
@click.option("--steps", default=None, metavar="T", help="Number of gradient steps. [default: 1]")
@click.option("--loss", default=None, type=click.Choice(["mse", "half-mse", "sse"]),
              help="mse = mean of (f-y)^2, half-mse = half of that, sse = sum of (f-y)^2. [default: mse]")
@click.option("--format", "fmt", default="text", show_default=True,
              type=click.Choice(["text", "latex", "markdown", "json"]), help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--templates", type=click.Path(file_okay=False, path_type=Path), default=None,
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
      symreparam solve --model '(u+v)*x + (u-v)' --init u=1 --init v=0 --data x=1,y=2 --data x=2,y=3
      symreparam solve problem.toml --format latex -o answer.tex
    """
    from symreparam.problem import REFERENCE, Origin, build_problem, read_problem_file
    from symreparam.render import render
    from symreparam.solution import solve as solve_problem

    flags = {"lr": lr, "steps": steps, "loss": loss, "models": list(models), "init": list(init), "data": list(data)}
    flags = {key: value for key, value in flags.items() if value}
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
    problem = build_problem(**{**fields, **flags}, origin=origin)
    solution = solve_problem(problem)
    _emit(render(solution, fmt, templates), output, force)


def _merge_init(base, items) -> dict[str, str]:
    """Initial values of the file or reference, with --init flags replacing them name by name."""
    from symreparam.parse import split_assignment

    merged = dict(base) if isinstance(base, dict) else dict(split_assignment(b, "--init") for b in base)
    merged.update(split_assignment(item, "--init") for item in items)
    return merged


def _emit(content: str, output: Path | None, force: bool) -> None:
    """Print, or write a file atomically without clobbering an existing one unless --force."""
    if output is None:
        click.echo(content, nl=False)
        return
    from symreparam.files import write_text

    write_text(output, content, force=force, field="--output")
    click.echo(f"wrote {output}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="symreparam")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
