"""Output files written whole or not at all, with errors a user can act on, and CSV cells no spreadsheet runs.

Every file skinscan writes goes through :func:`atomic_write`: it is written beside its target
under a temporary name that carries the writer's process id, then renamed over the target, so a
reader (or a second skinscan) never sees half a file. A failed write removes its temporary file
and raises :class:`~skinscan.errors.OutputError` naming the target; a process killed mid-write
leaves its temporary file, which :func:`remove_stale_temporaries` removes once that process is gone.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .errors import OutputError

__all__ = ["atomic_write", "write_bytes", "write_text", "write_csv", "inert_text", "remove_stale_temporaries"]

#: ``.<target name>.skinscan-<pid>-<token>.tmp``: the pid tells whether its writer is still running.
_TEMPORARY = re.compile(r"^\..+\.skinscan-(\d+)-[0-9a-f]+\.tmp$", re.DOTALL)
#: A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _advice(e: OSError, folder: Path) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full: free some space on the disk holding {folder} and run again"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{folder} cannot be written to: choose another --out"
    return f"check the free space and permissions of {folder}"


def output_error(e: OSError, path: Path, what: str) -> OutputError:
    """The :class:`OutputError` for an ``OSError`` met writing ``path``."""
    return OutputError(f"cannot write the {what} ({e.strerror or e}); {_advice(e, path.parent)}", path)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, what: str = "file") -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``.

    Parameters
    ----------
    path : path
        The target; its folder must exist.
    write : callable
        Writes the whole file at the path it is given.
    what : str
        What the file is, for the error message ("report", "table"...).

    Raises
    ------
    OutputError
        Naming ``path``, when writing or renaming fails with an ``OSError`` (a full disk, a
        read-only folder...). The temporary file is removed; the target is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.skinscan-{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        raise output_error(e, path, what) from None
    except BaseException:
        _unlink(tmp)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes, *, what: str = "file") -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), what=what)


def write_text(path: str | os.PathLike, text: str, *, what: str = "file") -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what=what)


def inert_text(value):
    """A text cell a spreadsheet shows as text: one starting with ``= + - @``, a tab or a carriage
    return gets a leading apostrophe (the OWASP rule). Anything but a ``str`` is returned as it is.

    Examples
    --------
    >>> inert_text('=HYPERLINK("http://x","click")')
    '\\'=HYPERLINK("http://x","click")'
    >>> inert_text("2026-03-14"), inert_text(-2.5)
    ('2026-03-14', -2.5)
    """
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, *, what: str = "table", **options) -> Path:
    """Write ``frame`` as CSV with :func:`atomic_write`, every text cell made inert (:func:`inert_text`).

    Numbers, dates and missing values are written as they are: only cells holding text can be
    read as a formula. ``options`` go to :meth:`pandas.DataFrame.to_csv` (``index=False`` by default).
    """
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column].dtype):
            safe[column] = safe[column].map(inert_text, na_action="ignore")
    options.setdefault("index", False)
    return atomic_write(path, lambda tmp: safe.to_csv(tmp, **options), what=what)


def remove_stale_temporaries(folder: str | os.PathLike, *, recursive: bool = False) -> int:
    """Remove the temporary files of :func:`atomic_write` whose writer process is gone (killed while
    writing); those of running processes are left alone. Returns how many were removed."""
    folder = Path(folder)
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for item in entries:
        if recursive and item.is_dir(follow_symlinks=False):
            removed += remove_stale_temporaries(item.path, recursive=True)
            continue
        m = _TEMPORARY.match(item.name)
        if m and not _alive(int(m[1])):
            removed += _unlink(Path(item.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _unlink(path: Path) -> int:
    try:
        path.unlink()
        return 1
    except OSError:
        return 0
