"""Output folders: checked before any work, written complete into a staging folder and swapped in at
once, and never replacing a folder that symreparam did not write.

Thousands of small files are written, and an earlier output removed, by a few threads: their system
calls overlap (they release the GIL), which matters most on virtual and network disks.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from symreparam.errors import SymreparamError


def _write_all(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write many small files into a new folder, in a few threads.

    Creating a file costs ~10 us on tmpfs but can take ~300 us on a virtual or network disk. Threads
    overlap those system calls (they release the GIL): on tmpfs 4 threads write 3000 files in about
    two thirds of the time one takes. The first files are written in turn and timed; if they were
    slow, the rest is shared among more threads.
    """
    base = os.fspath(folder) + os.sep
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

    def write(item: tuple[str, bytes]) -> None:
        # plain os calls on str paths: half the cost of Path.write_bytes per file
        rel, content = item
        fd = os.open(base + rel, flags, 0o666)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    items = list(files.items())
    probe = min(len(items), 64)
    start = time.perf_counter()
    for item in items[:probe]:
        write(item)
    slow = probe and (time.perf_counter() - start) / probe > 60e-6
    _in_threads(write, items[probe:], 8 if slow else 4)


def _remove_all(folder: Path) -> None:
    """Delete an earlier output folder (thousands of files) as :func:`_write_all` writes one, in threads.

    The folder is opened once, without following a symbolic link, and its files are removed relative
    to that handle, so a link put in its place meanwhile is never followed. Whatever is left, or any
    failure, is left to ``shutil.rmtree``, which ignores what it cannot delete: the new output is in
    place by now, and an old file left behind must not turn a finished run into an error."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        fd = None
    if fd is not None:
        try:
            with os.scandir(fd) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
            _in_threads(lambda name: os.unlink(name, dir_fd=fd), names, 4)
        except Exception:  # noqa: BLE001 - rmtree below tries again, ignoring what it cannot delete
            pass
        finally:
            os.close(fd)  # after every thread has stopped using it: _in_threads joins them all
    shutil.rmtree(folder, ignore_errors=True)


def _in_threads(each: Callable, items: list, workers: int) -> None:
    """``each(item)`` for every item, shared among ``workers`` threads (in this thread when the items
    are few). The first exception of any thread is raised once every thread has finished; the other
    threads stop at their next item, as they do when this thread is interrupted."""
    if len(items) < 16 * workers:
        for item in items:
            each(item)
        return
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(share) -> None:
        try:
            for item in share:
                if stop.is_set():
                    return
                each(item)
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            errors.append(exc)
            stop.set()

    started: list[threading.Thread] = []
    try:
        for i in range(workers):
            thread = threading.Thread(target=guarded, args=(items[i::workers],))
            thread.start()
            started.append(thread)
        for thread in started:
            thread.join()
    except BaseException:  # interrupted (Ctrl-C) or out of threads: no share may outlive this call
        stop.set()
        for thread in started:
            thread.join()
        raise
    if errors:
        raise errors[0]


def check_target(out_dir: Path, force: bool = False) -> None:
    """Refuse an output folder that cannot be written, or that holds files, unless ``force``.

    Called before any work (so a long run does not end in a refusal) and again just before writing.
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise SymreparamError("--out", f"{out_dir} is a symbolic link; give the folder it points to, or a new name")
    if out_dir.exists() and not out_dir.is_dir():
        raise SymreparamError("--out", f"{out_dir} exists and is not a folder")
    if Path.cwd().resolve().is_relative_to(out_dir.resolve()):
        # the output replaces the whole folder: never the one we stand in, or one above it
        raise SymreparamError("--out", f"{str(out_dir)!r} is the current folder or one above it; name a new "
                              "folder for the output, e.g. --out week5")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise SymreparamError("--out", f"{out_dir} already exists and is not empty; pass --force to replace it")
        stranger = _not_ours(out_dir)
        if stranger is not None:
            raise SymreparamError("--out", f"{out_dir} is not an earlier symreparam output ({stranger}), and --force "
                                  "replaces only those; choose another --out")
    for ancestor in out_dir.resolve().parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise SymreparamError("--out", f"{ancestor} is a file, so {out_dir} cannot be made there")
            break


# every name generate writes: booklets, per-variant files, the manifest
_OUR_FILES = re.compile(r"manifest\.json|quiz\.xml|(sheets|keys)\.(tex|pdf|md)"
                        r"|(sheet|key)-[A-Za-z0-9._-]{1,64}\.(tex|pdf|md)|variant-[A-Za-z0-9._-]{1,64}\.json")


def _not_ours(folder: Path) -> str | None:
    """Why ``folder`` is not a folder generate wrote (a file it never writes, or no manifest of ours), or None."""
    manifest = folder / "manifest.json"
    if manifest.is_symlink() or not manifest.is_file():
        return "it has no manifest.json"
    try:
        with open(manifest, "rb") as handle:
            head = handle.read(65536)  # the run's description comes before the (long) list of variants
    except OSError as exc:
        return f"its manifest.json cannot be read: {exc.strerror or exc}"
    if not head.startswith(b"{") or b'"symreparam": "' not in head or b'"family_sha256": "' not in head:
        return "its manifest.json is not one symreparam wrote"
    try:
        # scandir's entries know their type without a stat per file (thousands of files with --force)
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or not _OUR_FILES.fullmatch(entry.name):
                    return f"it holds {entry.name}, which generate never writes"
    except OSError as exc:
        return f"it cannot be listed: {exc.strerror or exc}"
    return None


def write_folder(out_dir: Path, files: Mapping[str, bytes], force: bool = False) -> None:
    """Write ``files`` (bytes by name) into ``out_dir`` at once: into a staging folder beside it, then a rename.

    An existing non-empty ``out_dir`` is refused unless ``force``, and even then unless it is an
    earlier output (see :func:`_not_ours`); it is replaced only after the new output is
    completely written, and put back if the swap fails, so a failure or an interruption never leaves
    half a set of files.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, force)
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SymreparamError("--out", f"cannot create {parent}: {exc.strerror or exc}") from None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as exc:
        raise SymreparamError("--out", f"cannot write in {parent}: {exc.strerror}") from None
    old = None
    try:
        _write_all(staging, files)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=parent))
            os.rmdir(old)
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
    except BaseException as exc:  # an interruption too: leave the folder as it was
        if old is not None and old.exists() and not out_dir.exists():
            os.replace(old, out_dir)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise SymreparamError("--out", f"cannot write {out_dir}: {exc.strerror or exc}") from None
        raise
    if old is not None:
        _remove_all(old)
