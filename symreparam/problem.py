"""The problem a user poses: models, initial values, data, loss, learning rate and steps.

Everything here is a frozen dataclass of exact SymPy objects. ``build_problem`` turns the raw
strings of the CLI flags or of a TOML file into a validated :class:`Problem`; every refusal names the
flag (``--init``) or the file key (``problem.toml: init``) it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import sympy as sp

from symreparam.errors import ProblemError, SymreparamError
from symreparam.parse import expansion_size, parse_assignments, parse_expression, parse_number, quote, split_assignment, \
    symbol

TARGET = "y"
MAX_STEPS = 1000
# Bounds that keep every problem a teaching-sized one, answered in seconds.
MAX_MODELS = 10
MAX_POINTS = 200
MAX_PARAMS = 30
MAX_MODEL_TERMS = 2000  # multiplied out; (a+b+c+d+g+h)**10 has 3003 and takes seconds to derive


class Loss(Enum):
    """Loss conventions; ``scale`` is c in L = c * sum_i (f(x_i) - y_i)^2 times n (c/n per point)."""

    MSE = "mse"
    HALF_MSE = "half-mse"
    SSE = "sse"

    def scale(self, n: int) -> sp.Rational:
        """The constant c with L = c * sum_i (f(x_i) - y_i)^2 for n data points."""
        return {Loss.MSE: sp.Rational(1, n), Loss.HALF_MSE: sp.Rational(1, 2 * n), Loss.SSE: sp.Integer(1)}[self]

    @property
    def description(self) -> str:
        """How the loss is defined, in words."""
        return {
            Loss.MSE: "mean squared error, L = (1/n) sum_i (f(x_i) - y_i)^2",
            Loss.HALF_MSE: "half mean squared error, L = (1/(2n)) sum_i (f(x_i) - y_i)^2",
            Loss.SSE: "sum of squared errors, L = sum_i (f(x_i) - y_i)^2",
        }[self]

    @classmethod
    def parse(cls, text: str, field_name: str) -> "Loss":
        """Read a loss name, accepting ``half_mse`` and any capitalisation."""
        key = str(text).strip().lower().replace("_", "-")
        for loss in cls:
            if loss.value == key:
                return loss
        raise ProblemError(field_name, f"unknown loss {text!r}; use one of: mse, half-mse, sse")


@dataclass(frozen=True)
class Model:
    """One parameterised model f(inputs; params) with its parameters in display order."""

    name: str
    expression: sp.Expr
    params: tuple[sp.Symbol, ...]
    text: str


@dataclass(frozen=True)
class Dataset:
    """Data points: ``inputs[i]`` holds the input values of point i, ``targets[i]`` its y."""

    input_symbols: tuple[sp.Symbol, ...]
    inputs: tuple[tuple[sp.Expr, ...], ...]
    targets: tuple[sp.Expr, ...]

    @property
    def size(self) -> int:
        """The number of data points n."""
        return len(self.targets)

    def substitution(self, i: int) -> dict[sp.Symbol, sp.Expr]:
        """The input values of point i as a substitution map."""
        return dict(zip(self.input_symbols, self.inputs[i]))


@dataclass(frozen=True)
class Problem:
    """A complete, validated gradient-descent problem on one or more models."""

    models: tuple[Model, ...]
    initial: tuple[tuple[sp.Symbol, sp.Expr], ...]
    data: Dataset
    loss: Loss = Loss.MSE
    lr: sp.Expr = field(default_factory=lambda: sp.Rational(1, 10))
    steps: int = 1
    # Names that stand for numbers still to be drawn (an exercise family derives once with them as
    # symbols, then substitutes each variant's values); empty for an ordinary problem.
    constants: tuple[sp.Symbol, ...] = ()
    # Extra input points where functions and kernels are also reported (e.g. "the change at x = 4").
    queries: tuple[tuple[sp.Expr, ...], ...] = ()
    # c in L = c * sum_i (f(x_i) - y_i)^2 when it is a symbol (a family drawing the loss); None: from ``loss``.
    loss_scale: sp.Expr | None = None
    # where the strings came from, so that errors found while deriving name the file key, not a flag
    origin: Origin | None = field(default=None, compare=False)

    @property
    def initial_values(self) -> dict[sp.Symbol, sp.Expr]:
        """Initial value of every parameter, by symbol."""
        return dict(self.initial)

    @property
    def lr_symbols(self) -> tuple[sp.Symbol, ...]:
        """The symbols of a symbolic learning rate (empty for a number or a drawn constant)."""
        return tuple(sorted(self.lr.free_symbols - set(self.constants), key=lambda s: s.name))

    def initial_of(self, model: Model) -> tuple[sp.Expr, ...]:
        """Initial parameter vector of one model."""
        values = self.initial_values
        return tuple(values[p] for p in model.params)


@dataclass(frozen=True)
class Origin:
    """Where the raw strings came from, so that errors name the flag or the file key.

    ``file`` is the problem file's name (None for flags only); ``flags`` lists the fields that
    command-line flags supplied on top of the file.
    """

    file: str | None = None
    flags: frozenset[str] = frozenset()

    _FLAGS = {"models": "--model", "init": "--init", "data": "--data", "lr": "--lr", "steps": "--steps",
              "loss": "--loss"}

    def field(self, key: str, index: int | None = None) -> str:
        """The user-facing name of one input field (1-based index for repeated ones)."""
        if self.file is None or key in self.flags:
            label = self._FLAGS.get(key, key)
            return f"{label} {index}" if index is not None else label
        return f"{self.file}: {key}[{index}]" if index is not None else f"{self.file}: {key}"

    def relabel(self, error: SymreparamError) -> SymreparamError:
        """``error`` naming this origin's field where it names a flag (the engine speaks in flags)."""
        key = next((k for k, flag in self._FLAGS.items() if flag == error.field), None)
        if key is None or self.field(key) == error.field:
            return error
        return type(error)(self.field(key), error.message)


def natural_key(name: str) -> tuple:
    """Sort key that puts w2 before w10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name))


REFERENCE = {
    "models": ["w1*x + w2", "10*w3*x + w4"],
    "init": ["w1=1", "w2=2", "w3=0.1", "w4=2"],
    "data": ["x=7,y=10"],
    "lr": "0.1",
    "steps": 1,
    "loss": "mse",
}


def reference_problem(**overrides) -> Problem:
    """The reference exercise: f1 = w1*x + w2 and f2 = 10*w3*x + w4, one point (7, 10), lr 1/10."""
    return build_problem(**{**REFERENCE, **overrides})


def build_problem(
    models: Sequence[str],
    init: Sequence[str] | Mapping[str, str],
    data: Sequence[str] | Sequence[Mapping[str, str]],
    lr: str = "0.1",
    steps: int | str = 1,
    loss: str = "mse",
    origin: Origin = Origin(),
    constants: Sequence[str] = (),
    queries: Sequence[Mapping[str, str]] = (),
) -> Problem:
    """Validate raw strings into a :class:`Problem`.

    ``init`` is ``["w1=1", ...]`` or ``{"w1": "1"}``; ``data`` is ``["x=7,y=10", ...]`` or
    ``[{"x": "7", "y": "10"}, ...]``. ``constants`` names symbols that values and models may use in
    place of numbers (an exercise family's drawn quantities); ``queries`` are extra input points.
    Raises :class:`ProblemError` / ``ParseError`` naming the field.
    """
    if not models:
        raise ProblemError(origin.field("models"), "no model given; add one, e.g. --model 'w1*x + w2'")
    if len(models) > MAX_MODELS:
        raise ProblemError(origin.field("models"), f"{len(models)} models given; compare at most {MAX_MODELS}")
    # The models are read first, so that a typo in one is reported before anything about the data.
    expressions = [parse_expression(str(text), origin.field("models", i)) for i, text in enumerate(models, start=1)]
    for i, expr in enumerate(expressions, start=1):
        if expansion_size(expr, MAX_MODEL_TERMS) > MAX_MODEL_TERMS:
            raise ProblemError(origin.field("models", i), f"multiplies out to more than {MAX_MODEL_TERMS} terms, too "
                               "many to derive exactly in reasonable time; use a smaller model")
    if not data:
        raise ProblemError(origin.field("data"), "no data point given; add one, e.g. --data x=7,y=10")
    if len(data) > MAX_POINTS:
        raise ProblemError(origin.field("data"), f"{len(data)} data points given; use at most {MAX_POINTS}")
    names = frozenset(constants)
    dataset = _build_dataset(data, origin, names)
    inputs = {s.name for s in dataset.input_symbols}
    clash = sorted(inputs & names)
    if clash:
        raise ProblemError(origin.field("data", 1), f"{clash[0]} is both an input and a drawn constant")
    built = tuple(_build_model(text, expr, i, inputs | names, origin)
                  for i, (text, expr) in enumerate(zip(models, expressions), start=1))
    used = {s.name for m in built for s in m.expression.free_symbols}
    unused = sorted(inputs - used, key=natural_key)
    if unused:
        how = "cancels out of every model it appears in" if _written_in(unused[0], built) else "appears in no model"
        raise ProblemError(origin.field("data", 1), f"{unused[0]} {how}; remove it from the data "
                           "or use it in a model")
    initial = _build_initial(init, built, inputs, origin, names)
    loss_value = Loss.parse(loss, origin.field("loss"))
    lr_value = _build_lr(lr, built, inputs, origin)
    _check_distinct_names([(s.name, origin.field("data")) for s in dataset.input_symbols]
                          + [(w.name, origin.field("models")) for w, _ in initial]
                          + [(s.name, origin.field("lr")) for s in lr_value.free_symbols]
                          + [(n, origin.field("draw")) for n in sorted(names)])
    steps_value = _build_steps(steps, origin)
    query_points = tuple(
        tuple(_value(str(q.get(s.name, "")), f"{origin.field('queries', i)} {s.name}", names)
              for s in dataset.input_symbols)
        for i, q in enumerate(queries, start=1))
    return Problem(built, initial, dataset, loss_value, lr_value, steps_value,
                   tuple(symbol(n) for n in sorted(names, key=natural_key)), query_points, origin=origin)


def _value(text: str, field_name: str, constants: frozenset[str]) -> sp.Expr:
    """A number, or with drawn constants an expression in them."""
    if not constants:
        return parse_number(text, field_name)
    return parse_expression(text, field_name, names=constants)


def _build_dataset(data, origin: Origin, constants: frozenset[str] = frozenset()) -> Dataset:
    rows: list[dict[str, sp.Expr]] = []
    for i, point in enumerate(data, start=1):
        name = origin.field("data", i)
        if isinstance(point, Mapping):
            row = {}
            for key, value in point.items():
                _check_name(str(key), name)
                row[str(key)] = _value(str(value), f"{name} {key}", constants)
        else:
            row = parse_assignments(str(point), name)
        if TARGET not in row:
            raise ProblemError(name, f"missing {TARGET}; write the target as {TARGET}=VALUE, e.g. x=7,y=10")
        rows.append(row)
    names = [k for k in rows[0] if k != TARGET]
    for i, row in enumerate(rows[1:], start=2):
        other = [k for k in row if k != TARGET]
        if sorted(other) != sorted(names):
            raise ProblemError(
                origin.field("data", i),
                f"has inputs {', '.join(sorted(other)) or 'none'} but the first point has "
                f"{', '.join(sorted(names)) or 'none'}; every point needs the same inputs",
            )
    names.sort(key=natural_key)
    symbols = tuple(symbol(n) for n in names)
    return Dataset(
        symbols,
        tuple(tuple(row[n] for n in names) for row in rows),
        tuple(row[TARGET] for row in rows),
    )


def _written_in(name: str, models: Sequence[Model]) -> bool:
    """Whether ``name`` is written in some model's text (so a name absent from the parsed model cancelled out)."""
    return any(re.search(rf"\b{re.escape(name)}\b", m.text) for m in models)


def _check_name(name: str, field_name: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name):
        raise ProblemError(field_name, f"{name!r} is not a valid name; use letters, digits and _")


def _check_distinct_names(named: list[tuple[str, str]]) -> None:
    """Refuse names (each with the field it comes from) that the results would misread: a model's name
    (f1, f2, ...), and two names that would look the same in the worked solution (w1 and w_1 both print
    as w_1, and b__c would print as b to the power c)."""
    seen: dict[str, str] = {}
    for name, field_name in dict.fromkeys(named):
        if re.fullmatch(r"f\d+", name):
            # results, answer keys and the checker call the models f1, f2, ...
            raise ProblemError(field_name, f"{name} is what the results call a model; give it another name")
        if "__" in name:
            raise ProblemError(field_name, f"the name {name} has a double underscore, which LaTeX would "
                               "print as a power; use a single one")
        key = name.replace("_", "")
        if key in seen and seen[key] != name:
            raise ProblemError(field_name, f"the names {seen[key]} and {name} would print the same in "
                               "the worked solution; rename one")
        seen[key] = name


def _build_model(text: str, expr: sp.Expr, index: int, inputs: set[str], origin: Origin) -> Model:
    """One model; every name that is not an input (or a drawn constant) is a parameter."""
    name = origin.field("models", index)
    used = {s.name for s in expr.free_symbols}
    if TARGET in used:
        raise ProblemError(name, f"{TARGET} is the target; a model may not use it")
    params = sorted((s for s in expr.free_symbols if s.name not in inputs), key=lambda s: natural_key(s.name))
    if not params:
        raise ProblemError(name, "has no parameters to train; every name in it is an input")
    if len(params) > MAX_PARAMS:
        raise ProblemError(name, f"has {len(params)} parameters; use at most {MAX_PARAMS}")
    return Model(f"f{index}", expr, tuple(params), str(text).strip())


def _build_initial(init, models: tuple[Model, ...], inputs: set[str], origin: Origin,
                   constants: frozenset[str] = frozenset()):
    label = origin.field("init")
    pairs: list[tuple[str, str]] = []
    if isinstance(init, Mapping):
        pairs = [(str(k), str(v)) for k, v in init.items()]
    else:
        for i, item in enumerate(init, start=1):
            pairs.append(split_assignment(str(item), label))
    values: dict[str, sp.Expr] = {}
    for key, text in pairs:
        _check_name(key, label)
        if key in values:
            raise ProblemError(label, f"{key} is given twice")
        values[key] = _value(text, f"{label} {key}", constants)
    params = {p.name for m in models for p in m.params}
    for key in values:
        if key in inputs:
            raise ProblemError(label, f"{key} is an input (it appears in the data), not a parameter")
        if key not in params:
            if _written_in(key, models):
                raise ProblemError(label, f"{key} cancels out of every model it appears in, so gradient descent "
                                   f"cannot move it; remove its initial value or change the model")
            raise ProblemError(label, f"{key} appears in no model")
    ordered = sorted(params, key=natural_key)
    for key in ordered:
        if key not in values:
            raise ProblemError(
                label,
                f"no initial value for {key}; add {key}=VALUE (if {key} is an input, give it in every data point)",
            )
    return tuple((symbol(key), values[key]) for key in ordered)


def _build_lr(text, models: tuple[Model, ...], inputs: set[str], origin: Origin) -> sp.Expr:
    label = origin.field("lr")
    value = parse_expression(str(text), label)
    taken = {p.name for m in models for p in m.params} | inputs | {TARGET}
    clash = sorted(s.name for s in value.free_symbols if s.name in taken)
    if clash:
        free = next(n for n in ("eta", "lr", "alpha", *(f"eta{i}" for i in range(1, 100))) if n not in taken)
        raise ProblemError(label, f"the learning rate may not use {', '.join(clash)} (a name of the model or data); "
                           f"use a new name such as {free}")
    if not value.free_symbols and not value.is_positive:
        raise ProblemError(label, f"the learning rate must be positive, got {value}")
    if value.free_symbols:
        # A symbolic rate must be positive whatever positive values its names take (eta, eta/2, eta**2
        # are; -eta and 1 - eta are not, or not always).
        positive = {s: sp.Dummy(s.name, positive=True) for s in value.free_symbols}
        if value.xreplace(positive).is_positive is not True:
            raise ProblemError(label, f"the learning rate {sp.sstr(value)} is not positive for every positive "
                               f"{', '.join(sorted(s.name for s in value.free_symbols))}; use e.g. eta or eta/2")
    return value


def _build_steps(steps, origin: Origin) -> int:
    label = origin.field("steps")
    text = str(steps).strip()
    if not re.fullmatch(r"[0-9]{1,6}", text):
        raise ProblemError(label, f"expected a whole number of steps from 1 to {MAX_STEPS}, got {text!r}")
    value = int(text)
    if not 1 <= value <= MAX_STEPS:
        raise ProblemError(label, f"expected a whole number of steps from 1 to {MAX_STEPS}, got {value}")
    return value


_TOML_KEYS = ("models", "init", "data", "lr", "steps", "loss")


class _Literal(str):
    """The source text of a TOML float, kept so that 0.1 stays exactly 1/10."""


def read_problem_file(path: str | Path) -> dict:
    """The raw fields of a TOML problem file (schema in the README), checked for shape only."""
    from symreparam.files import read_text

    path = Path(path)
    raw = read_text(path, str(path), "TOML problem file")
    return problem_fields(load_toml(raw, path.name), path.name)


def load_toml(raw: str, label: str) -> dict:
    """Parse TOML text, keeping the source text of floats (so 0.1 stays exactly 1/10)."""
    import tomllib

    try:
        return tomllib.loads(raw, parse_float=_Literal)
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(label, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ProblemError(label, "not valid TOML here: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ProblemError(label, f"not usable TOML: {str(exc)[:80]}") from None


def problem_fields(doc: Mapping, label: str) -> dict:
    """Check a parsed TOML/JSON mapping for shape and return its fields as strings."""
    origin = Origin(label)
    unknown = sorted(set(doc) - set(_TOML_KEYS))
    if unknown:
        raise ProblemError(f"{label}: {unknown[0]}", f"unknown key; expected one of: {', '.join(_TOML_KEYS)}")
    models = doc.get("models", [])
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ProblemError(origin.field("models"), 'expected a list of strings, e.g. models = ["w1*x + w2"]')
    init = doc.get("init", {})
    if not isinstance(init, Mapping):
        raise ProblemError(origin.field("init"), "expected a table, e.g. [init] followed by w1 = 1")
    data = doc.get("data", [])
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, Mapping) for d in data):
        raise ProblemError(origin.field("data"), "expected an array of tables, e.g. data = [{x = 7, y = 10}]")
    entries = [(f"{origin.field('init')}.{k}", v) for k, v in init.items()]
    entries += [(f"{origin.field('data', i)}.{k}", v) for i, d in enumerate(data, 1) for k, v in d.items()]
    entries += [(origin.field(k), doc[k]) for k in ("lr", "steps", "loss") if k in doc]
    for label, value in entries:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ProblemError(label, f"expected a number or a string, got {quote(repr(value))}")
        if isinstance(value, _Literal) and value.strip().lstrip("+-") in ("inf", "nan"):
            raise ProblemError(label, f"{value} is not a number; give an exact value such as 0.1")
    fields = {
        "models": list(models),
        "init": {str(k): str(v) for k, v in init.items()},
        "data": [{str(k): str(v) for k, v in d.items()} for d in data],
    }
    fields.update({k: str(doc[k]) for k in ("lr", "steps", "loss") if k in doc})
    return fields


def load_problem(path: str | Path) -> Problem:
    """Read a TOML problem file into a :class:`Problem`."""
    fields = read_problem_file(path)
    return build_problem(**fields, origin=Origin(Path(path).name))
