"""Writing and reading user files: atomically, never over an existing file unless asked to, and never
more than a sane amount."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from symreparam.errors import SymreparamError

MAX_INPUT_BYTES = 1_000_000  # problem, family, answer and roster files are a few kB


def _default_mode() -> int:
    """The mode a newly created file gets under the current umask (mkstemp would give 0600).

    Read from /proc where there is one: setting the umask to learn it would, for a moment, make
    files that other threads create world-writable.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes(path: Path, content: bytes, *, force: bool = False, field: str = "--out") -> None:
    """Write ``content`` to ``path`` via a temporary file and a rename, so a reader never sees half a file.

    Refuses to replace an existing file (or a link, even a broken one) unless ``force``; without
    ``force`` the final step is a hard link, which fails rather than replace a file that appeared in
    the meantime. The parent folder must exist.
    """
    path = Path(path)
    if path.is_dir():
        raise SymreparamError(field, f"{path} is a folder; give a file name")
    exists = os.path.lexists(path)
    if exists and not force:
        raise SymreparamError(field, f"{path} already exists; pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SymreparamError(field, f"the folder {parent} does not exist; create it first")
    mode = stat.S_IMODE(path.stat().st_mode) if exists and path.is_file() else _default_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise SymreparamError(field, f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise SymreparamError(field, f"{path} already exists; pass --force to overwrite it") from None
            except OSError:  # a file system without hard links: the check above has to do
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except OSError as exc:
        raise SymreparamError(field, f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_text(path: Path, content: str, *, force: bool = False, field: str = "--out") -> None:
    """UTF-8 text version of :func:`write_bytes`."""
    write_bytes(path, content.encode("utf-8"), force=force, field=field)


def read_text(path: Path, field: str, what: str = "file") -> str:
    """A small UTF-8 text file (a byte-order mark is allowed), or one line saying what is wrong with it.

    Only regular files are read: a folder, a FIFO or a device (``/dev/zero``) would block or never end.
    """
    path = Path(path)
    label = field or str(path)
    if not str(path) or str(path) == ".":
        raise SymreparamError(label, f"empty path; give the path of a {what}")
    # Opened without blocking and checked on the open file, so that a FIFO put in its place after a
    # check cannot stall the read; and never more than the limit is read.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SymreparamError(label, f"no such file; give the path of a {what}") from None
    except IsADirectoryError:
        raise SymreparamError(label, f"is a folder; give the path of a {what}") from None
    except OSError as exc:
        raise SymreparamError(label, f"cannot read it ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SymreparamError(label, f"is a folder; give the path of a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise SymreparamError(label, f"is not a regular file; give the path of a {what}")
        if info.st_size > MAX_INPUT_BYTES:
            raise SymreparamError(label, f"is {info.st_size} bytes; a {what} may be at most {MAX_INPUT_BYTES} bytes")
        chunks, size = [], 0
        while size <= MAX_INPUT_BYTES:
            chunk = os.read(fd, MAX_INPUT_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        raise SymreparamError(label, f"cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_INPUT_BYTES:
        raise SymreparamError(label, f"is more than {MAX_INPUT_BYTES} bytes; a {what} may be at most that")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SymreparamError(label, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                              "save it as UTF-8") from None
