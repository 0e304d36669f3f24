"""Compiling generated LaTeX with pdflatex, with errors that show the relevant lines of the log."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from symreparam.errors import SymreparamError

TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended texlive-pictures"
TIMEOUT_SECONDS = 120


def pdflatex_path() -> str:
    """The pdflatex executable, or an error naming the Debian packages that provide it."""
    found = shutil.which("pdflatex")
    if found is None:
        raise SymreparamError(
            "pdf", f"pdflatex is not installed; install it with: apt-get install -y --no-install-recommends "
            f"{TEX_PACKAGES}")
    return found


def log_excerpt(log: str, context: int = 3, limit: int = 4) -> str:
    """The error lines of a LaTeX log ('! ...') with a few lines after each."""
    lines = log.splitlines()
    picked: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("!"):
            picked.extend(lines[i:i + context + 1])
            picked.append("...")
            if len(picked) > limit * (context + 2):
                break
    return "\n".join(picked) if picked else "\n".join(lines[-15:])


def compile_pdf(tex: str, name: str = "document") -> bytes:
    """Compile LaTeX source to PDF bytes in a private temporary folder (run twice when needed for layout).

    Raises :class:`SymreparamError` with the log's error lines if pdflatex fails.
    """
    exe = pdflatex_path()
    with tempfile.TemporaryDirectory(prefix="symreparam-tex-") as tmp:
        folder = Path(tmp)
        (folder / f"{name}.tex").write_text(tex, encoding="utf-8")
        cmd = [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", f"{name}.tex"]
        # A fixed date (and no trailer ID, see preamble.tex) makes the same source give the same PDF bytes.
        # openin_any/openout_any=p: TeX may read and write only below the working folder, so text from
        # a family file (\\input{/etc/passwd}) cannot pull a local file into a PDF.
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1", openin_any="p", openout_any="p")
        try:
            done = subprocess.run(cmd, cwd=folder, capture_output=True, timeout=TIMEOUT_SECONDS, env=env)
        except subprocess.TimeoutExpired:
            raise SymreparamError("pdf", f"pdflatex did not finish {name}.tex within {TIMEOUT_SECONDS} s") from None
        pdf = folder / f"{name}.pdf"
        if done.returncode != 0 or not pdf.exists():
            log_file = folder / f"{name}.log"
            log = log_file.read_text(encoding="latin-1") if log_file.exists() else done.stdout.decode("latin-1")
            raise SymreparamError("pdf", f"pdflatex failed on {name}.tex:\n{log_excerpt(log)}")
        return pdf.read_bytes()
