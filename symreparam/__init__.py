"""symreparam: exact gradient descent under reparameterisation, for machine-learning teaching.

Public API (imported lazily, so that ``symreparam --help`` does not pay for importing SymPy)::

    from symreparam import solve
    solution = solve()                      # the reference exercise
    solution.models[1].derivation.final     # (141/10, 11/5)
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "solve": "symreparam.solution",
    "Solution": "symreparam.solution",
    "ModelSolution": "symreparam.solution",
    "Comparison": "symreparam.solution",
    "Problem": "symreparam.problem",
    "Model": "symreparam.problem",
    "Dataset": "symreparam.problem",
    "Loss": "symreparam.problem",
    "build_problem": "symreparam.problem",
    "load_problem": "symreparam.problem",
    "reference_problem": "symreparam.problem",
    "render": "symreparam.render",
    "to_json": "symreparam.render",
    "parse_expression": "symreparam.parse",
    "SymreparamError": "symreparam.errors",
    "ParseError": "symreparam.errors",
    "ProblemError": "symreparam.errors",
    "VerificationError": "symreparam.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'symreparam' has no attribute {name!r}")
