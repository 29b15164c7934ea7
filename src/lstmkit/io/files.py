"""Files that never exist half-written, and JSON read back with a clear error.

Every write is atomic: the bytes go to a temporary file in the same folder, are
fsync'ed, and ``os.replace`` puts them in place. A killed process leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError

MAX_JSON_DEPTH = 64
"""Deeper JSON is refused before parsing: nothing lstmkit writes nests this deep, and
Python's parser would otherwise fail with a RecursionError."""

# mkstemp creates files readable by the owner only; give the final file the mode an
# ordinary open() would, so run directories can be shared like any other output.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX only: Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    Write the whole file to the yielded path inside the ``with`` block. If the block
    raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        fd = os.open(temporary, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path`` whole.

    For content named by what it holds (a cache entry): when another process put the
    same ``path`` in place meanwhile, its copy is kept and this one discarded. If the
    block raises, nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield staging
        try:
            os.replace(staging, path)
        except OSError:
            if not path.is_dir():
                raise
            shutil.rmtree(staging)  # another process made the same folder meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def cache_root() -> Path:
    """lstmkit's cache (built kernels, token streams): ``$LSTMKIT_CACHE``, else
    ``$XDG_CACHE_HOME/lstmkit``, else ``~/.cache/lstmkit``."""
    if os.environ.get("LSTMKIT_CACHE"):
        return Path(os.environ["LSTMKIT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstmkit"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, standard JSON (no NaN/Infinity) to ``path`` atomically."""
    text = json.dumps(obj, indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")


def parse_json(text: str, source: str) -> Any:
    """Parse JSON text read from ``source`` (named in the error), refusing deep nesting."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:  # nesting depth outside strings, before json recurses into it
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise LstmkitError(f"{source} nests {deepest} levels deep (at most {MAX_JSON_DEPTH}); "
                           "it was not written by lstmkit: restore it or re-create the run")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise LstmkitError(
            f"{source} is not valid JSON ({error}); the file is damaged: restore it or "
            "re-create the run"
        ) from error


def read_json(path: str | Path) -> Any:
    """Read a JSON file, raising :class:`LstmkitError` if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise LstmkitError(f"{path} does not exist; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise LstmkitError(f"{path} is not UTF-8 text ({error}); the file is damaged: "
                           "restore it or re-create the run") from error
    return parse_json(text, str(path))
