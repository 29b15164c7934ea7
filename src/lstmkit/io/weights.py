"""Weights and optimizer state in safetensors files: nothing is unpickled.

Weights and optimizer tensors live in safetensors files; the optimizer's other state
(step counts, hyperparameters) is JSON kept in the same file's header, so loading a
model never runs code. Tied weights are stored once and come back tied.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_path

_ALIASES_KEY = "lstmkit.aliases"
_OPTIMIZER_KEY = "lstmkit.optimizer"


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




# --------------------------------------------------------------------------- from bytes


def _header(data: bytes, source: str) -> dict[str, Any]:
    """The JSON header of a safetensors file held in memory (8-byte length, then JSON)."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        if length > len(data) - 8:
            raise ValueError("header runs past the end of the file")
        header = json.loads(data[8:8 + length])
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        return header
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        raise LstmkitError(
            f"{source} is not a valid safetensors file ({error}); it is damaged or was not "
            "written by lstmkit: re-create it by training again"
        ) from None


def weight_shapes(data: bytes, source: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors in a safetensors file held in memory, aliases included."""
    header = _header(data, source)
    metadata = header.pop("__metadata__", None) or {}
    shapes = {key: tuple(entry["shape"]) for key, entry in header.items()}
    for alias, key in json.loads(metadata.get(_ALIASES_KEY, "{}")).items():
        shapes[alias] = shapes[key]
    return shapes


def weights_from_bytes(data: bytes, source: str) -> dict[str, torch.Tensor]:
    """A state dict from the bytes of a file written by :func:`save_weights`."""
    metadata = _header(data, source).get("__metadata__") or {}
    try:
        tensors = safetensors.torch.load(data)
    except Exception as error:  # safetensors raises its own error types
        raise LstmkitError(f"{source} is not a valid safetensors file ({error}); re-create "
                           "it by training again") from None
    for alias, key in json.loads(metadata.get(_ALIASES_KEY, "{}")).items():
        tensors[alias] = tensors[key]
    return tensors


def check_fits(build: Callable[[], torch.nn.Module], shapes: Mapping[str, tuple[int, ...]],
               source: str) -> None:
    """Refuse weights whose shapes differ from the network ``build`` makes, before it is
    made for real: built on the meta device it allocates nothing, so a damaged config
    asking for a huge network fails here instead of exhausting memory."""
    with torch.device("meta"):
        expected = {key: tuple(t.shape) for key, t in build().state_dict().items()}
    if expected != dict(shapes):
        wrong = sorted(set(expected) ^ set(shapes)) or sorted(
            key for key in expected if expected[key] != shapes[key])
        first = wrong[0]
        raise LstmkitError(
            f"{source} does not fit the network its config.json describes (first mismatch: "
            f"{first}: config {expected.get(first)}, weights {shapes.get(first)}); the run "
            "directory was edited or is damaged: train again"
        )
