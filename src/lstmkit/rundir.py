"""Run directories: atomic files, safetensors weights, optimizer state, config.json.

A run directory holds everything needed to reload and reproduce a model. Three rules
shape this module:

- Every write is atomic: the bytes go to a temporary file in the same folder, are
  fsync'ed, and ``os.replace`` puts them in place. A killed process leaves either the
  old file or the new one, never half of one.
- Nothing is unpickled. Weights and optimizer tensors live in safetensors files; the
  optimizer's other state (step counts, hyperparameters) is JSON kept in the same
  file's header, so loading a model never runs code.
- A failed run never destroys what was saved before. :func:`staged_run_dir` writes a
  new run into a hidden sibling and swaps it in only when the run succeeded.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from lstmkit import __version__
from lstmkit.errors import LstmkitError

FORMAT_VERSION = 1
"""Version of the run-directory layout this lstmkit writes and reads."""

CONFIG_FILE = "config.json"
HEADER_KEYS = ("lstmkit_version", "format_version", "task")
"""Keys :func:`write_config` adds to every config.json, next to the task's payload."""

_ALIASES_KEY = "lstmkit.aliases"
_OPTIMIZER_KEY = "lstmkit.optimizer"

# mkstemp creates files readable by the owner only; give the final file the mode an
# ordinary open() would, so run directories can be shared like any other output.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


# --------------------------------------------------------------------------- atomic files


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


def read_json(path: str | Path) -> Any:
    """Read a JSON file, raising :class:`LstmkitError` if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise LstmkitError(f"{path} does not exist; check the path")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LstmkitError(
            f"{path} is not valid JSON ({error}); the file is damaged: restore it or "
            "re-create the run"
        ) from error


# --------------------------------------------------------------------------- weights


def _storable(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a state dict into tensors safetensors accepts and a map of tied aliases.

    safetensors refuses tensors that share memory. Tied weights (an embedding reused
    as the output layer) are stored once and recorded as ``alias -> stored key``;
    other overlapping views are copied.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen_views: dict[tuple, str] = {}
    seen_storages: set[int] = set()
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach()
        storage = tensor.untyped_storage().data_ptr()
        view = (storage, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(),
                tensor.dtype, tensor.device)
        if view in seen_views:
            aliases[key] = seen_views[view]
            continue
        seen_views[view] = key
        if storage in seen_storages and tensor.numel() > 0:
            tensor = tensor.clone()
        seen_storages.add(storage)
        tensors[key] = tensor.contiguous().cpu()
    return tensors, aliases


def save_weights(
    path: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Save a model's ``state_dict`` to a safetensors file atomically.

    ``metadata`` (string to string) goes into the file header; read it back with
    :func:`read_weights_metadata`. Tied weights are stored once.
    """
    tensors, aliases = _storable(state_dict)
    header = dict(metadata or {})
    if aliases:
        header[_ALIASES_KEY] = json.dumps(aliases)
    with atomic_path(path) as temporary:
        safetensors.torch.save_file(tensors, temporary, metadata=header or None)


def _open_safetensors(path: Path) -> Any:
    if not path.is_file():
        raise LstmkitError(f"no weights file at {path}; check the run directory")
    try:
        return safetensors.safe_open(path, framework="pt")
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise LstmkitError(
            f"{path} is not a valid safetensors file ({error}); it is damaged or was not "
            "written by lstmkit: re-create it by training again"
        ) from error


def read_weights_metadata(path: str | Path) -> dict[str, str]:
    """Return the string metadata stored in a safetensors file's header."""
    with _open_safetensors(Path(path)) as handle:
        return dict(handle.metadata() or {})


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a state dict saved by :func:`save_weights` (tied weights come back tied)."""
    path = Path(path)
    with _open_safetensors(path) as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key).to(device) for key in handle.keys()}
    for alias, key in json.loads(metadata.get(_ALIASES_KEY, "{}")).items():
        tensors[alias] = tensors[key]
    return tensors


# --------------------------------------------------------------------------- optimizer


def _to_json(value: Any) -> Any:
    """JSON has no tuples (AdamW's ``betas``): tag them so they come back as tuples."""
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(item) for item in value]}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, torch.Tensor):
        raise TypeError("tensors inside optimizer hyperparameters are not supported")
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(item) for item in value["__tuple__"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def save_optimizer_state(
    path: str | Path,
    state_dict: Mapping[str, Any],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Save ``optimizer.state_dict()`` without pickle, atomically, in one safetensors file.

    Per-parameter tensors (AdamW's ``exp_avg``, ``exp_avg_sq``, ``step``) are stored
    as ``state.<index>.<name>``; everything else (non-tensor per-parameter values and
    ``param_groups`` with their hyperparameters) is JSON in the file header.
    """
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        plain_state[str(index)] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                plain_state[str(index)][name] = _to_json(value)
    document = {"state": plain_state, "param_groups": _to_json(state_dict["param_groups"])}
    header = dict(metadata or {})
    header[_OPTIMIZER_KEY] = json.dumps(document, allow_nan=False)
    with atomic_path(path) as temporary:
        safetensors.torch.save_file(tensors, temporary, metadata=header)


def load_optimizer_state(path: str | Path) -> dict[str, Any]:
    """Load a state dict saved by :func:`save_optimizer_state`, ready for
    ``optimizer.load_state_dict`` (which moves the tensors to the parameters' device)."""
    path = Path(path)
    with _open_safetensors(path) as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    if _OPTIMIZER_KEY not in metadata:
        raise LstmkitError(f"{path} holds no optimizer state; it is not an optimizer file")
    document = json.loads(metadata[_OPTIMIZER_KEY])
    state: dict[int, dict[str, Any]] = {
        int(index): _from_json(values) for index, values in document["state"].items()
    }
    for key, tensor in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = tensor
    return {"state": state, "param_groups": _from_json(document["param_groups"])}


# --------------------------------------------------------------------------- directories


def prepare_run_dir(path: str | Path, overwrite: bool) -> Path:
    """Check that a run may be written to ``path`` and return it as a :class:`Path`.

    A missing or empty directory is fine. A non-empty one is refused unless
    ``overwrite`` is True; even then nothing is deleted here: use
    :func:`staged_run_dir` to replace it only once the new run has succeeded.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LstmkitError(f"{path} is a file, not a directory; choose another run directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise LstmkitError(
            f"run directory {path} already exists and is not empty; pass --overwrite to "
            "replace it (the old run is kept until the new one finishes) or choose "
            "another directory"
        )
    return path


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


def _swap_in(staging: Path, target: Path) -> None:
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


@contextlib.contextmanager
def staged_run_dir(path: str | Path, overwrite: bool) -> Iterator[Path]:
    """Write a run into a hidden sibling of ``path``; swap it in when the block succeeds.

    ::

        with staged_run_dir("runs/air", overwrite=True) as tmp:
            write_config(tmp, "forecast", payload)
            fit(..., run_dir=tmp)

    On success the staged directory replaces ``path`` (atomically on Linux). If the
    block raises (including Ctrl-C), the staged directory is deleted and whatever was
    at ``path`` is untouched. Refuses a non-empty ``path`` unless ``overwrite``.

    Under torchrun only rank 0 stages and swaps; the other processes get a scratch
    directory that is discarded afterwards (training writes files on rank 0 only),
    so they cannot swap an empty run over rank 0's.
    """
    target = prepare_run_dir(path, overwrite)
    if int(os.environ.get("RANK", "0")) != 0:
        scratch = Path(tempfile.mkdtemp(prefix="lstmkit-scratch-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, target)


# --------------------------------------------------------------------------- config.json


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


def read_config(
    run_dir: str | Path, expected_task: str, required: Iterable[str] = ()
) -> dict[str, Any]:
    """Read and check ``config.json`` of a model directory written for ``expected_task``.

    ``required`` names further files the caller needs (e.g. ``"best.safetensors"``);
    a missing one is reported by name. Returns the whole config (header and payload).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LstmkitError(
            f"model directory {run_dir} does not exist; pass the directory a training run "
            "wrote"
        )
    for name in (CONFIG_FILE,):
        if not (run_dir / name).is_file():
            raise LstmkitError(
                f"{run_dir} is missing {name}: it is not a complete lstmkit model directory "
                "(its training run may not have finished); train again or pass another "
                "directory"
            )
    config = read_json(run_dir / CONFIG_FILE)
    if not isinstance(config, dict):
        raise LstmkitError(f"{run_dir / CONFIG_FILE} is not a JSON object; the file is damaged")
    missing = [key for key in HEADER_KEYS if key not in config]
    if missing:
        raise LstmkitError(
            f"{run_dir / CONFIG_FILE} lacks {', '.join(map(repr, missing))}; the file is "
            "damaged or was not written by lstmkit"
        )
    version = config["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LstmkitError(
            f"{run_dir / CONFIG_FILE} has an invalid format_version {version!r}; the file "
            "is damaged"
        )
    if version > FORMAT_VERSION:
        raise LstmkitError(
            f"{run_dir} was written by a newer lstmkit ({config['lstmkit_version']}, format "
            f"{version}); this lstmkit {__version__} reads format {FORMAT_VERSION}: upgrade "
            "lstmkit"
        )
    if config["task"] != expected_task:
        raise LstmkitError(
            f"{run_dir}: this is a {config['task']!r} model directory, not a "
            f"{expected_task!r} one; pass a directory written by a {expected_task!r} run"
        )
    for name in required:
        if not (run_dir / name).is_file():
            raise LstmkitError(
                f"{run_dir} is missing {name}: it is not a complete lstmkit model directory "
                "(its training run may not have finished); train again or pass another "
                "directory"
            )
    return config
