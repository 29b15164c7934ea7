"""Run directories: the one set of rules every task writes and reads them by.

A run directory holds everything that reloads and reproduces a model: config.json,
weights in safetensors, the task's other state, metrics, the training checkpoint and
log. The rules, all kept here:

- **One writer.** A run being written is locked (``flock`` on ``.<name>.lock`` beside
  it); a second writer gets a clear error.
- **Visible while it trains.** A new run is written in place, so ``log.csv`` can be
  watched; it is finished when ``manifest.json`` appears, written last.
- **Resumable.** Training keeps checkpoints in the run; a run killed at any moment
  (SIGKILL, Ctrl-C) continues with ``resume`` to the result of an uninterrupted run.
- **Overwrite loses nothing.** ``overwrite`` trains into ``.<name>.next`` beside the old
  run, which stays complete and loadable; when the new run has finished the two are
  swapped in one rename and the old one is deleted. An interrupted overwrite is
  resumed like any run.
- **Readers never mix two runs.** ``manifest.json`` names every file with its SHA-256;
  :func:`load_run` checks each file it reads against it and starts over when a file
  changed under it (a run swapped in meanwhile).
- **Outputs stay out.** No output option may point into a model's run directory
  (:func:`check_outside_runs`).

Under torchrun only rank 0 locks, writes and swaps; the other processes read the same
checkpoint when resuming.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from lstmkit import __version__
from lstmkit.errors import LstmkitError, RunInterrupted
from lstmkit.io.files import _fsync_dir, atomic_write_json, parse_json
from lstmkit.io.weights import check_fits, weight_shapes, weights_from_bytes

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a second writer is not detected there
    fcntl = None

FORMAT_VERSION = 2
"""Version of the run-directory layout this lstmkit writes and reads (2: manifest)."""

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
HEADER_KEYS = ("lstmkit_version", "format_version", "task")
"""Keys :func:`write_config` adds to every config.json, next to the task's payload."""

CHECKPOINT_MARK = "trainer_state.json"
"""A file the training loop writes at every checkpoint (see lstmkit.train.checkpoint):
where it is found without a manifest, a run was interrupted."""

_WRITE_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT)
_READ_ATTEMPTS = 50  # a reader retries this often while a run is swapped under it

T = TypeVar("T")


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


# --------------------------------------------------------------------------- paths


def pending_path(path: Path) -> Path:
    """Where an overwrite of ``path`` is trained until it replaces the old run."""
    return path.parent / f".{path.name}.next"


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def check_writable(path: str | Path, option: str) -> Path:
    """Refuse a path that cannot become a file or directory: one under a regular file,
    or in a folder this process may not write. ``option`` is the CLI option named."""
    path = Path(path)
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise LstmkitError(f"{path} lies under {ancestor}, which is a file, not a "
                                   f"folder; choose another {option}")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise LstmkitError(f"cannot write in {ancestor} (permission denied); choose "
                                   f"another {option}")
            break
    return path


def is_finished(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


def _has_interrupted_run(path: Path) -> bool:
    return path.is_dir() and not is_finished(path) and any(
        p.name in (CHECKPOINT_MARK, CONFIG_FILE) for p in path.rglob("*.json"))


def check_outside_runs(output: str | Path, option: str, runs: Iterable[str | Path]) -> None:
    """Refuse an output path that is, or lies inside, one of the run directories ``runs``
    (writing there would change or replace a model)."""
    target = Path(output).resolve()
    for run in runs:
        run = Path(run).resolve()
        if target == run or run in target.parents:
            raise LstmkitError(f"{option} {output} points into the model's run directory "
                               f"{run}; write outputs somewhere else")


# --------------------------------------------------------------------------- the lock


class _Lock:
    """An exclusive ``flock`` on ``.<name>.lock``; removed again on release.

    A lock file removed by its holder while another process waited on it would let two
    processes hold locks on different files: after locking, the file is checked to be
    the one now at the path, else the lock is taken again.
    """

    def __init__(self, path: Path, option: str) -> None:
        self.file = _lock_path(path)
        self.fd: int | None = None
        if fcntl is None:
            return
        while True:
            try:
                fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise LstmkitError(f"cannot create the lock {self.file} ({error.strerror}); "
                                   f"choose another {option}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise LstmkitError(
                    f"{path} is being written by another lstmkit process (pid {holder}); "
                    f"wait for it to finish or choose another {option}"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        self.file.unlink(missing_ok=True)
        os.close(self.fd)  # closing drops the flock
        self.fd = None


# --------------------------------------------------------------------------- writing


@dataclass
class Run:
    """A run directory being written.

    ``path`` is the run directory as named; ``work`` where this run's files go (``path``
    itself, or ``.<name>.next`` while overwriting); ``resumed`` whether an interrupted
    run is continued; ``writer`` whether this process writes (rank 0 under torchrun).
    """

    path: Path
    work: Path
    resumed: bool
    writer: bool


def _plan(path: Path, overwrite: bool, resume: bool, option: str) -> tuple[Path, bool]:
    """(where the run is written, whether it is an overwrite trained beside the old run)."""
    pending = pending_path(path)
    if path.exists() and not path.is_dir():
        raise LstmkitError(f"{path} is a file, not a directory; choose another {option}")
    if resume:
        if pending.is_dir():
            return pending, True
        if not path.is_dir():
            raise LstmkitError(f"nothing to resume: {path} does not exist; start the run "
                               "without --resume")
        if is_finished(path):
            raise LstmkitError(f"nothing to resume: {path} holds a finished run; pass "
                               "--overwrite to train it again")
        return path, False
    if not path.is_dir() or not any(path.iterdir()):
        return path, False
    if overwrite:
        return pending, True
    if is_finished(path):
        raise LstmkitError(f"{path} holds a finished run; pass --overwrite to replace it "
                           "(the old run is kept until the new one finishes) or choose "
                           f"another {option}")
    if _has_interrupted_run(path):
        raise LstmkitError(f"{path} holds an interrupted run; pass --resume to continue it, "
                           f"--overwrite to start it again, or choose another {option}")
    raise LstmkitError(f"{path} is a folder that is not empty; pass --overwrite to replace "
                       f"its contents or choose another {option}")


@contextlib.contextmanager
def open_run(path: str | Path, task: str, overwrite: bool = False, resume: bool = False,
             resumable: bool = True, option: str = "--run-dir") -> Iterator[Run]:
    """Write a run directory by the module's rules; yields the :class:`Run`.

    ::

        with open_run("runs/air", "forecast", overwrite=True) as run:
            if run.writer:
                write_config(run.work, "forecast", payload)
            fit(..., run_dir=run.work, resume=run.resumed)

    When the block returns, ``manifest.json`` is written and an overwrite is swapped
    in. Ctrl-C keeps what was written and raises :class:`RunInterrupted` (how to
    resume); with ``resumable=False`` (outputs that are not training runs) nothing is
    kept. Any other failure removes what this run wrote, unless it was resumed, and
    leaves an old run as it was. A full or read-only disk becomes a clear error.
    """
    path = check_writable(path, option)
    if _rank() != 0:
        # Only rank 0 checks and writes; the others read a resumed run's checkpoint from
        # where rank 0 resumes it (rank 0 may already have started writing: no checks).
        pending = pending_path(path)
        resumes_overwrite = resume and pending.is_dir()
        yield Run(path, pending if resumes_overwrite else path, resume, writer=False)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _Lock(path, option)
    try:
        work, swap = _plan(path, overwrite, resume, option)  # under the lock: stable
        if swap and not resume and work.exists():
            shutil.rmtree(work)  # an earlier overwrite that was not resumed: start anew
        created = not work.exists()
        work.mkdir(parents=True, exist_ok=True)
        try:
            yield Run(path, work, resume, writer=True)
            write_manifest(work, task)
            if swap:
                swap_in(work, path)
        except KeyboardInterrupt:
            if not resumable:
                _discard(work, created)
                raise
            raise RunInterrupted(f"interrupted; what was trained is kept in {work}: run the "
                                 "same command again with --resume to continue") from None
        except BaseException as error:
            if not resume:
                _discard(work, created)
            if isinstance(error, OSError) and error.errno in _WRITE_ERRORS:
                raise LstmkitError(f"cannot write the run to {path}: {error.strerror}; free "
                                   f"space or choose another {option}") from None
            raise
    finally:
        lock.release()


def _discard(work: Path, created: bool) -> None:
    """Remove what a failed run wrote: the folder if it made it, else its contents."""
    if created:
        shutil.rmtree(work, ignore_errors=True)
        return
    for child in work.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    Returns False where the platform or filesystem cannot, so the caller falls back.
    """
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                       rename_exchange)
    return result == 0


def swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the old ``target`` is removed only afterwards."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(staging, target)  # rename(2) may replace an empty directory
        return
    if _exchange(staging, target):
        retired = staging  # after the exchange the staging name holds the old run
    else:
        # Two renames: if the process dies between them the old run survives in the
        # hidden ``.<name>.old-*`` sibling.
        retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, retired / target.name)
        os.replace(staging, target)
    _fsync_dir(target.parent)
    shutil.rmtree(retired, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, task: str) -> None:
    """``manifest.json``: every file of the run with its size and SHA-256, written last."""
    files = {}
    for file in sorted(directory.rglob("*")):
        name = file.relative_to(directory).as_posix()
        if file.is_file() and name != MANIFEST_FILE:
            files[name] = {"bytes": file.stat().st_size, "sha256": _sha256(file)}
    atomic_write_json(directory / MANIFEST_FILE, {
        "lstmkit_version": __version__, "format_version": FORMAT_VERSION, "task": task,
        "files": files})


def write_config(run_dir: str | Path, task: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``config.json``: the header (:data:`HEADER_KEYS`) plus the task's payload.

    Returns the dictionary written. ``payload`` must be JSON-serialisable and must not
    use the header's keys.
    """
    clash = set(HEADER_KEYS) & set(payload)
    if clash:
        raise ValueError(f"config payload may not use the reserved keys {sorted(clash)}")
    config = {"lstmkit_version": __version__, "format_version": FORMAT_VERSION, "task": task}
    config.update(payload)
    atomic_write_json(Path(run_dir) / CONFIG_FILE, config)
    return config


# --------------------------------------------------------------------------- reading


class _RunChanged(Exception):
    """A file did not match the manifest read before it: read the run again."""

    def __init__(self, name: str) -> None:
        self.name = name


class FinishedRun:
    """The files of one finished run, each checked against its manifest when read."""

    def __init__(self, path: Path, task: str) -> None:
        self.path, self.task = path, task
        if not path.is_dir():
            raise LstmkitError(f"run directory {path} does not exist; pass a directory a "
                               "training run wrote")
        if not is_finished(path):
            if _has_interrupted_run(path) or pending_path(path).is_dir():
                raise LstmkitError(
                    f"{path} holds a run that has not finished (interrupted, or still "
                    "training); finish it with --resume, or pass a finished run")
            raise LstmkitError(f"{path} is not an lstmkit run directory (it has no "
                               f"{MANIFEST_FILE}); pass the directory a training run wrote")
        try:
            text = (path / MANIFEST_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _RunChanged(MANIFEST_FILE) from None
        manifest = parse_json(text, str(path / MANIFEST_FILE))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise LstmkitError(f"{path / MANIFEST_FILE} is damaged; train the run again")
        version = manifest.get("format_version")
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise LstmkitError(
                f"{path} was written by a newer lstmkit ({manifest.get('lstmkit_version')}, "
                f"format {version}); this lstmkit {__version__} reads format "
                f"{FORMAT_VERSION}: upgrade lstmkit")
        if manifest.get("task") != task:
            raise LstmkitError(f"{path} is a {manifest.get('task')!r} run directory, not a "
                               f"{task!r} one; pass a directory written by a {task!r} run")
        self.files: dict[str, Any] = manifest["files"]
        self.config = self._config()

    def has(self, name: str) -> bool:
        return name in self.files

    def bytes(self, name: str) -> bytes:
        """The file's bytes, checked against the manifest."""
        entry = self.files.get(name)
        if entry is None:
            raise LstmkitError(f"{self.path} has no {name}; the run directory is incomplete "
                               "or from another version: train again")
        try:
            data = (self.path / name).read_bytes()
        except FileNotFoundError:
            raise _RunChanged(name) from None
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise _RunChanged(name)
        return data

    def text(self, name: str) -> str:
        try:
            return self.bytes(name).decode("utf-8")
        except UnicodeDecodeError as error:
            raise LstmkitError(f"{self.path / name} is not UTF-8 text ({error})") from None

    def json(self, name: str) -> Any:
        return parse_json(self.text(name), str(self.path / name))

    def weights(self, name: str, build: Callable[[], torch.nn.Module] | None = None
                ) -> dict[str, torch.Tensor]:
        """A state dict; with ``build``, first checked to fit the network it builds."""
        data, source = self.bytes(name), str(self.path / name)
        if build is not None:
            check_fits(build, weight_shapes(data, source), source)
        return weights_from_bytes(data, source)

    def _config(self) -> dict[str, Any]:
        config = self.json(CONFIG_FILE)
        if not isinstance(config, dict) or any(key not in config for key in HEADER_KEYS):
            raise LstmkitError(f"{self.path / CONFIG_FILE} is not an lstmkit config; the "
                               "file is damaged")
        return config


def task_of(path: str | Path) -> str:
    """The task that wrote the finished run at ``path`` (as its manifest names it)."""
    path = Path(path)
    if not is_finished(path):
        FinishedRun(path, "")  # raises the error that says what the directory is instead
    manifest = parse_json((path / MANIFEST_FILE).read_text(encoding="utf-8"),
                          str(path / MANIFEST_FILE))
    task = manifest.get("task") if isinstance(manifest, dict) else None
    if not isinstance(task, str):
        raise LstmkitError(f"{path / MANIFEST_FILE} is damaged; train the run again")
    return task


def load_run(path: str | Path, task: str, read: Callable[[FinishedRun], T]) -> T:
    """``read(run)`` on the finished run at ``path``, with every file it reads from one
    and the same run: when a run is swapped in meanwhile, it reads the new one anew.

    A config.json lacking a key or holding a wrong type is reported, not raised as a
    KeyError or TypeError.
    """
    path = Path(path)
    for _ in range(_READ_ATTEMPTS):
        try:
            return read(FinishedRun(path, task))
        except _RunChanged as changed:
            last = changed.name
            time.sleep(0.02)
        except (KeyError, TypeError) as error:
            raise LstmkitError(f"{path / CONFIG_FILE} does not describe a {task!r} model this "
                               f"lstmkit can load ({type(error).__name__}: {error}); the "
                               "file was edited or is damaged: train again") from None
    raise LstmkitError(f"{path / last} does not match the run's {MANIFEST_FILE}: it was "
                       "changed after the run finished or is damaged; restore it or train "
                       "again")
