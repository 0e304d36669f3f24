"""Turn a verified :class:`~symreparam.solution.Solution` into text, LaTeX, Markdown or JSON.

LaTeX and Markdown come from Jinja2 templates (TeX-safe delimiters ``\\VAR{}``/``\\BLOCK{}``, strict
undefined variables); plain text is assembled here because it is the default on the CLI's startup
path, where importing and compiling templates would cost more than solving the problem.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import sympy as sp

from symreparam import __version__
from symreparam.errors import SymreparamError
from symreparam.printing import LATEX, MARKDOWN, TEXT, text
from symreparam.report import outline
from symreparam.solution import Solution
from symreparam.verify import TOLERANCE

FORMATS = ("text", "latex", "markdown", "json")
WIDTH = 100


def render(solution: Solution, fmt: str = "text", templates: Path | None = None) -> str:
    """The solution in one of :data:`FORMATS`; ``templates`` overrides bundled templates by name."""
    if fmt == "text":
        return render_text(solution)
    if fmt == "json":
        import json

        return json.dumps(to_json(solution), indent=2) + "\n"
    if fmt == "latex":
        env = environment("tex", templates)
        return render_template(load_template(env, ["solve.tex"], "--templates"), "--templates",
                               **outline(LATEX, solution))
    if fmt == "markdown":
        env = environment("md", templates)
        return render_template(load_template(env, ["solve.md"], "--templates"), "--templates",
                               **outline(MARKDOWN, solution))
    raise SymreparamError("--format", f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")


def environment(kind: str, templates: Path | None = None):
    """A Jinja2 environment for ``tex`` (TeX-safe delimiters), ``md`` or ``xml`` (autoescaped) templates.

    Templates in ``templates`` (an instructor's folder) take precedence over the bundled ones.
    """
    import jinja2

    from symreparam.printing import tex_escape
    from symreparam.resources import bundled

    dirs = [str(templates)] if templates is not None else []
    dirs.append(str(bundled("templates")))
    # auto_reload=False: templates do not change during a run, and checking would stat the file
    # on every render of every variant.
    options = dict(loader=_recording_loader(dirs), undefined=jinja2.StrictUndefined,
                   keep_trailing_newline=True, auto_reload=False)
    if kind == "tex":
        options.update(
            block_start_string=r"\BLOCK{", block_end_string="}",
            variable_start_string=r"\VAR{", variable_end_string="}",
            comment_start_string=r"\#{", comment_end_string="}",
            line_statement_prefix="%%", line_comment_prefix="%#",
            trim_blocks=True, lstrip_blocks=True, autoescape=False,
        )
    elif kind == "xml":
        options.update(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    else:
        options.update(autoescape=False, trim_blocks=True, lstrip_blocks=True)
    if templates is not None:
        # An instructor's folder may come from anyone: its templates run sandboxed, without access to
        # Python internals, with bounded ranges, powers and repetitions, and under a time limit
        # (render_template); bundled templates are trusted and run faster unsandboxed.
        env = _sandbox()(**options)
    else:
        env = jinja2.Environment(**options)
    env.filters["texescape"] = tex_escape
    env.filters["md_math"] = md_math
    env.filters["upper_first"] = upper_first
    return env


def md_math(text: str) -> str:
    """LaTeX inline maths ``\\( ... \\)`` (as family files write prompts) as Markdown's ``$ ... $``."""
    return text.replace("\\(", "$").replace("\\)", "$")


def upper_first(text: str) -> str:
    """The first letter in upper case and nothing else touched (Jinja's ``capitalize`` lowers the rest,
    which turns \\(A A^T\\) into \\(a a^t\\))."""
    return text[:1].upper() + text[1:]


def _recording_loader(dirs: list[str]):
    """A file-system loader that remembers the source of every template it hands out.

    The sources of the templates a run actually used (extended and included ones too) are what the
    manifest's template hash covers, so that it changes exactly when the output could.
    """
    import jinja2

    class RecordingLoader(jinja2.FileSystemLoader):
        def __init__(self, searchpath):
            super().__init__(searchpath)
            self.used: dict[str, str] = {}

        def get_source(self, environment, template):
            source, filename, uptodate = super().get_source(environment, template)
            self.used[template] = source
            return source, filename, uptodate

    return RecordingLoader(dirs)


def load_template(env, names: Sequence[str], field: str):
    """The first of ``names`` that exists, with a missing or broken template as a one-line error."""
    import jinja2

    try:
        return env.select_template(list(names))
    except jinja2.TemplatesNotFound:
        folders = ", ".join(env.loader.searchpath)
        raise SymreparamError(field, f"no template {' or '.join(names)} in {folders}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise SymreparamError(field, f"{exc.filename or exc.name} line {exc.lineno}: {exc.message}") from None
    except UnicodeDecodeError:
        raise SymreparamError(field, f"a template among {', '.join(names)} is not UTF-8 text") from None
    except (OSError, RecursionError) as exc:
        raise SymreparamError(field, f"cannot read the template {names[0]} ({exc.__class__.__name__})") from None


TEMPLATE_SECONDS = 20  # a user template that renders for longer is looping, not typesetting


def _sandbox():
    """Jinja's immutable sandbox, with ``**`` and ``*`` bounded: ``9**(9**10)`` or ``'x' * 10**10``
    would otherwise run out of time or memory inside a single expression."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["**", "*"])

        def call_binop(self, context, operator, left, right):
            if operator == "**":
                if isinstance(right, (int, float)) and abs(right) > 100:
                    raise SecurityError("powers above 100 are not allowed in templates")
                return left ** right
            for a, b in ((left, right), (right, left)):
                if isinstance(a, (str, list, tuple)) and isinstance(b, int) and len(a) * b > 100_000:
                    raise SecurityError("repetitions longer than 100000 are not allowed in templates")
            return left * right

    return Sandbox


def render_template(template, field: str, **context) -> str:
    """Render a template, turning a template's own mistakes (an unknown variable, 1/0, a loop that
    does not end) into one line. A bundled template's exception is a bug and is left to show as one."""
    import jinja2

    sandboxed = getattr(template.environment, "sandboxed", False)
    try:
        if not sandboxed:  # a bundled template, rendered thousands of times a run: no timer to set
            return template.render(**context)
        with _time_limit(TEMPLATE_SECONDS):
            return template.render(**context)
    except jinja2.TemplateError as exc:
        message = " ".join(str(exc.message or exc).split())[:200]
        raise SymreparamError(field, f"template {template.name}: {message}") from None
    except UnicodeDecodeError:
        raise SymreparamError(field, f"template {template.name} includes a file that is not UTF-8 text") from None
    except RecursionError:
        raise SymreparamError(field, f"template {template.name} includes or extends itself") from None
    except _TimeUp:
        raise SymreparamError(field, f"template {template.name} took more than {TEMPLATE_SECONDS} s "
                              "(a loop that is too long?)") from None
    except SymreparamError:
        raise
    except Exception as exc:
        if not sandboxed:
            raise
        message = " ".join(str(exc).split())[:160]
        raise SymreparamError(field, f"template {template.name}: {exc.__class__.__name__}: {message}") from None


class _TimeUp(Exception):
    pass


class _time_limit:  # noqa: N801 - used as a context manager
    """SIGALRM after ``seconds`` in the main thread of a POSIX process (elsewhere no limit can be set)."""

    def __init__(self, seconds: float | None) -> None:
        import signal
        import threading

        self.seconds = seconds if seconds and hasattr(signal, "SIGALRM") \
            and threading.current_thread() is threading.main_thread() else None

    def __enter__(self):
        if self.seconds:
            import signal

            def expire(signum, frame):
                raise _TimeUp

            self.previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc) -> None:
        if self.seconds:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def render_latex_summary(solution: Solution) -> str:
    """A compact LaTeX summary for Jupyter: each model's function before and after the steps."""
    o = outline(LATEX, solution)
    lines = []
    for m in o["models"]:
        lines.append(m["function_initial"] + r" \;\longrightarrow\; " + m["function_final"].split(" = ", 1)[1])
    return r"$\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}$"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _block(label: str, lines: Sequence[str], width: int = 18) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        head = (label if i == 0 else "").ljust(width)
        out.append(f"  {head}{line}")
    return out


def _wrap(sentence: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(sentence, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]


def render_text(solution: Solution) -> str:
    """The readable derivation printed by ``symreparam solve`` by default."""
    o = outline(TEXT, solution)
    pb = o["problem"]
    steps = pb["steps"]
    lines = [f"Gradient descent, {steps} step{'s' if steps != 1 else ''} at learning rate {pb['lr']}, "
             f"on the {pb['loss_description'].split(',')[0]}", ""]
    lines.append("Problem")
    lines += _table([[m["definition"], "from " + m["initial"]] for m in pb["models"]])
    lines.append("  data")
    lines += _table([pb["columns"]] + pb["rows"], indent="    ")
    lines += _wrap(f"loss: {pb['loss_description']} with n = {pb['n']}, so dL/dw = {pb['loss_factor']} * "
                   "sum_i r_i * df/dw(x_i), where r_i = f(x_i) - y_i is the residual")
    lines.append("")
    for m in o["models"]:
        lines.append(m["definition"])
        lines += _block("residual", m["residuals"])
        lines += _block("chain rule", m["partials"] + m["gradient"])
        lines += _block("first update", m["updates"])
        if steps > 1:
            rows = [["step"] + m["params"]]
            for entry in m["trajectory"]:
                rows.append(["..."] + [""] * len(m["params"]) if entry is None else [str(entry[0])] + entry[1])
            lines.append("  every step")
            lines += _table(rows, indent="    ")
        lines += _block("new function", [m["function_final"]])
        if m["linear"]:
            lines += _block("theta = A w + b", [f"A = {m['linear']['A']}", f"b = {m['linear']['b']}",
                                                f"P = A A^T = {m['linear']['P']}"])
        lines += _block("tangent kernel", m["kernel"] + [f"Gram matrix at the data: {m['gram']}"])
        lines += _block("function step", [f"f(x) - lr * {pb['loss_factor']} * sum_i K(x, x_i) r_i = "
                                          f"{m['function_step']}"])
        if m["stability"]:
            s = m["stability"]
            run = f"; {s['run']}" if s["run"] else ""
            at = f"; {s['at']} it {s['behaviour']}" if s["behaviour"] else ""
            lines += _block("stability", textwrap.wrap(
                f"converges from every start iff 0 < lr < {s['max_lr']} (largest Hessian eigenvalue "
                f"{s['lambda_max']}){run}{at}", WIDTH - 20))
        if m["limit"] is not None:
            where = f" ({m['stability']['reach']})" if m["stability"] else ""
            lines += _block("limit T -> oo", [", ".join(m["limit"]) + where,
                                              f"{m['name']}({m['args']}) = {m['function_limit']}"])
        if m["newton"] is not None:
            lines += _block("Newton step", [", ".join(m["newton"]), f"{m['name']}({m['args']}) = {m['function_newton']}"])
        for note in m["notes"]:
            lines += _wrap("note: " + note)
        lines.append("")
    comp = o["comparison"]
    if len(o["models"]) > 1:
        lines.append("Comparison: how far each coefficient moved")
        names = [m["name"] for m in o["models"]]
        head = ["coefficient"] + names + [f"{n}/{names[0]}" for n in names[1:]]
        rows = [head]
        for r in comp["rows"]:
            ratios = ["-" if v is None else v for v in r["ratios"][1:]]
            rows.append([f"{r['label']} ({r['basis']})"] + r["changes"] + ratios)
        lines += _table(rows)
        yes = {True: "yes", False: "no", None: "n/a (a model is not linear in its parameters)"}
        lines.append(f"  same function class: {yes[comp['same_class']]}; "
                     f"same function at the start: {yes[comp['same_start']]}")
    else:
        lines.append("How far each coefficient moved")
        lines += _table([[f"{r['label']} ({r['basis']})", r["changes"][0]] for r in comp["rows"]])
    for sentence in comp["conclusion"]:
        lines += _wrap(sentence)
    lines.append("")
    lines += _wrap(f"Checked: every number above was re-computed independently in NumPy float64; largest relative "
                   f"discrepancy {o['max_rel_error']} (tolerance {o['tolerance']}).", indent="")
    return "\n".join(lines) + "\n"


def _limit_reached(d) -> bool | None:
    """Whether gradient descent at the problem's rate goes to ``limit`` (None: no limit, or a symbolic rate)."""
    if d.limit is None or d.stability is None or d.stability.behaviour is None:
        return None
    return d.stability.behaviour in ("converges", "converges, oscillating", "stays put")


def _s(value) -> str | None:
    return None if value is None else text(value)


def _matrix(m: sp.MatrixBase) -> list[list[str]]:
    return [[text(v) for v in row] for row in m.tolist()]


def to_json(solution: Solution) -> dict:
    """The documented JSON contract (see the README): exact values as strings SymPy reads back."""
    problem = solution.problem
    data = problem.data
    comp = solution.comparison
    labels = comp.basis.labels
    models = []
    for ms in solution.models:
        d = ms.derivation
        names = [w.name for w in d.model.params]
        stability = d.stability
        models.append({
            "name": d.model.name,
            "expression": text(d.model.expression),
            "params": {w: {"initial": text(a), "final": text(b)} for w, a, b in zip(names, d.initial, d.final)},
            "trajectory": [{w: text(v) for w, v in zip(names, step)} for step in d.trajectory],
            "function_initial": text(d.function_initial),
            "function_final": text(d.function_final),
            "gradient_initial": {w: text(g) for w, g in zip(names, d.gradient)},
            "gram_matrix": _matrix(d.gram),
            "kernel": [text(k) for k in d.kernel],
            "function_step": text(d.function_step),
            "linear_in_params": d.is_linear,
            "reparameterisation": None if ms.reparam is None else {
                "A": _matrix(ms.reparam.A), "b": [text(v) for v in ms.reparam.b], "P": _matrix(ms.reparam.P)},
            "coefficients": {label: {"initial": text(a), "final": text(b), "change": text(c)}
                             for label, a, b, c in zip(labels, ms.coefficients_initial, ms.coefficients_final,
                                                       ms.changes)},
            "max_stable_lr": None if stability is None else text(stability.max_lr),
            "lr_behaviour": None if stability is None else stability.behaviour,
            "max_stable_lr_from_start": None if stability is None else text(stability.max_lr_run),
            "top_direction_excited": None if stability is None else stability.top_excited,
            "limit": None if d.limit is None else {w: text(v) for w, v in zip(names, d.limit)},
            "limit_reached": _limit_reached(d),
            "function_limit": _s(d.function_limit),
            "newton": None if d.newton is None else {w: text(v) for w, v in zip(names, d.newton)},
            "function_newton": _s(d.function_newton),
            "notes": [n.kind for n in d.notes],
            "verification": {"max_rel_error": ms.verification.max_rel_error,
                             "checks": {c.name: c.max_rel_error for c in ms.verification.checks}},
        })
    return {
        "symreparam": __version__,
        "loss": problem.loss.value,
        "lr": text(problem.lr),
        "steps": problem.steps,
        "data": [{**{s.name: text(v) for s, v in zip(data.input_symbols, row)}, "y": text(y)}
                 for row, y in zip(data.inputs, data.targets)],
        "models": models,
        "comparison": {
            "basis": [text(f) for f in comp.basis.functions],
            "labels": list(labels),
            "changes": {ms.name: {label: text(c) for label, c in zip(labels, ms.changes)} for ms in solution.models},
            "ratios": {ms.name: {label: _s(r) for label, r in zip(labels, row)}
                       for ms, row in zip(solution.models, comp.ratios)},
            "same_function_class": comp.same_function_class,
            "same_initial_function": comp.same_initial_function,
        },
        "verification": {"max_rel_error": solution.max_rel_error, "tolerance": TOLERANCE},
    }


def render_check(report, fmt: str = "text", show_answers: bool = False) -> str:
    """A check report as readable text or as JSON (see the README for the JSON fields)."""
    import json

    if fmt == "json":
        return json.dumps(check_to_json(report, show_answers), indent=2) + "\n"
    right, total = report.score
    lines = [f"Checking {total} answer{'s' if total != 1 else ''} to {report.exercise.label}", ""]

    def item(text: str) -> list[str]:
        return textwrap.wrap(text, WIDTH, initial_indent="    - ", subsequent_indent="      ")

    for v in report.verdicts:
        head = f"{v.name} = {v.given}"
        if v.correct:
            lines.append(f"{head}: correct" + ("" if v.exact else " (within the tolerance for decimals)") + ".")
            continue
        if v.status == "consistent":
            several = len(v.consistent_with) > 1
            lines.append(f"{head}: not correct, but it follows correctly from your answer{'s' if several else ''} "
                         f"{', '.join(v.consistent_with)} (error carried forward).")
        elif v.note:
            lines.append(f"{head}: not accepted: {v.note}.")
        else:
            lines.append(f"{head}: not correct.")
        if show_answers:
            lines += _wrap(f"The answer is {v.expected}.", indent="    ")
        if v.status == "consistent" or v.note:
            continue  # the mistake behind it is explained at the earlier answer
        if v.diagnoses:
            lines += _wrap("This is the answer " + ("each of these typical mistakes gives:" if len(v.diagnoses) > 1
                                                    else "a typical mistake gives:"), indent="    ")
            for d in v.diagnoses:
                lines += item(f"you {d.title}: {d.why}.")
                if d.yours:
                    worked = f" ({d.worked} in the worked solution)" if show_answers and d.worked else ""
                    lines += _wrap(f"Your path leaves the worked solution at {d.step}: with this mistake "
                                   f"{d.where} is {d.yours}{worked}.", indent="      ")
                else:
                    lines += _wrap(f"Your path leaves the worked solution at {d.step}.", indent="      ")
        else:
            lines += _wrap("It matches none of the typical mistakes; compare your working step by step with the "
                           f"worked solution ({report.exercise.solution_hint}).", indent="    ")
    lines.append("")
    lines.append(f"{right} of {total} correct. Decimals are accepted within "
                 f"{report.tolerance * 100:g}% of the exact value.")
    return "\n".join(lines) + "\n"


def check_to_json(report, show_answers: bool = False) -> dict:
    """The JSON form of a check report."""
    right, total = report.score
    return {
        "symreparam": __version__,
        "exercise": report.exercise.label,
        "correct": right,
        "total": total,
        "tolerance": report.tolerance,
        "answers": [{
            "name": v.name,
            "given": v.given,
            "correct": v.correct,
            "status": v.status,
            **({"expected": v.expected} if show_answers else {}),
            "consistent_with": list(v.consistent_with),
            **({"note": v.note} if v.note else {}),
            "mistakes": [{"id": d.id, "title": d.title, "why": d.why, "step": d.step, "where": d.where,
                          "yours": d.yours, **({"worked": d.worked} if show_answers else {})}
                         for d in v.diagnoses],
        } for v in report.verdicts],
        "verification": {"max_rel_error": report.max_rel_error, "tolerance": TOLERANCE},
    }
