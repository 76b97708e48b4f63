"""Files and folders written so that a reader sees the old content or the new one, never a part.

Temporary names sit beside the target (same file system, so the final ``os.replace`` is atomic)
and are created with mode 0666 / 0777, so the umask applies as for a plain ``open`` or ``mkdir``
(``tempfile.mkstemp`` / ``mkdtemp`` would leave results readable by their owner only).
Standard library only: any module may import this one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temp_name(target: Path) -> Path:
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}"


def temp_dir_beside(out_dir: Path) -> Path:
    """A new empty folder beside ``out_dir``, to fill and then move into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(out_dir)
    tmp.mkdir(mode=0o777)
    return tmp


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move a finished temporary folder into place (the old one is removed only then)."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)


@contextmanager
def atomic_dir(out_dir: str | Path) -> Iterator[Path]:
    """A temporary folder to fill inside the ``with`` block; it replaces ``out_dir`` when the
    block ends, and is removed instead when the block raises."""
    out_dir = Path(out_dir)
    tmp = temp_dir_beside(out_dir)
    try:
        yield tmp
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_file_target(path: str | Path) -> Path:
    """A file path that can be written: not a folder, and no file where a parent folder must be
    (a ``ValueError`` naming it otherwise, so a command can check before it does its work)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{path}: {parent} is a file, not a folder")
            break
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    path = check_file_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(path)
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except OSError as err:
        raise ValueError(f"{path}: cannot write it ({err.strerror or err})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_csv_atomic(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A CSV with ``header`` then ``rows``, written whole (a reader never sees part of it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
