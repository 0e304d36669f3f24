"""Where the bundled templates and exercise families live.

A wheel carries them inside the package (``symreparam/templates``); an editable checkout keeps them at
the top of the repository. The package copy wins, the checkout is the fallback.
"""

from __future__ import annotations

from pathlib import Path


def bundled(name: str) -> Path:
    """The directory of bundled ``templates`` or ``exercises``."""
    from importlib import resources

    try:
        inside = Path(str(resources.files("symreparam") / name))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - zipped or unusual installs
        inside = None
    if inside is not None and inside.is_dir():
        return inside
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"the bundled {name} directory is missing from this installation")
