"""Writing output files: atomically, and never over an existing file unless asked to."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from symreparam.errors import SymreparamError


def write_bytes(path: Path, content: bytes, *, force: bool = False, field: str = "--out") -> None:
    """Write ``content`` to ``path`` via a temporary file and a rename, so a reader never sees half a file.

    Refuses to replace an existing file unless ``force``; the parent folder must exist.
    """
    path = Path(path)
    if path.exists() and not force:
        raise SymreparamError(field, f"{path} already exists; pass --force to overwrite it")
    if path.is_dir():
        raise SymreparamError(field, f"{path} is a folder; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SymreparamError(field, f"the folder {parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SymreparamError(field, f"cannot write {path}: {exc.strerror or exc}") from None


def write_text(path: Path, content: str, *, force: bool = False, field: str = "--out") -> None:
    """UTF-8 text version of :func:`write_bytes`."""
    write_bytes(path, content.encode("utf-8"), force=force, field=field)
