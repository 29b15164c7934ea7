"""How a whole sequence is computed.

- ``reference``: the readable step-by-step loop, differentiated by autograd; runs
  every configuration and records gates.
- ``fused``: torch's own op (oneDNN on CPU, cuDNN on GPU); the plain cell only.
- ``native``: lstmkit's compiled kernel for every variant (see kernels/native).
- ``auto``: for the plain cell, fused, or native where the benchmark measured it
  faster at that shape (see kernels/native/choice.py); for a variant, native when it
  is available, else reference with one warning that says why.

The layer says which one ran in its ``last_backend`` attribute and in a debug log
line on the ``lstmkit.kernels`` logger. Asking for a backend that cannot run a
configuration raises an error; there is no silent fallback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

BACKENDS = ("auto", "reference", "fused", "native")

log = logging.getLogger("lstmkit.kernels")


def check_backend_name(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


def resolve_backend(
    requested: str,
    fused_blocker: str | None,
    native_blocker: str | None | Callable[[], str | None],
    native_preferred: bool = False,
) -> str:
    """The backend that will run; fused_blocker/native_blocker say why one cannot (None: it can).

    native_blocker may be a function, called only when the answer matters (asking may
    build the native kernel). native_preferred: for auto, whether native is faster than
    fused for this call when both can run it.
    """
    if requested == "auto":
        if fused_blocker is None and not native_preferred:
            return "fused"
        reason = native_blocker() if callable(native_blocker) else native_blocker
        if reason is None:
            return "native"
        if fused_blocker is None:
            return "fused"
        _warn_reference_fallback(reason)
        return "reference"
    if requested == "fused" and fused_blocker is not None:
        raise ValueError(
            f"backend='fused' cannot run this configuration: {fused_blocker}. "
            "Use backend='auto' or backend='reference'."
        )
    if requested == "native":
        reason = native_blocker() if callable(native_blocker) else native_blocker
        if reason is not None:
            raise RuntimeError(f"backend='native' is not available: {reason}")
    return requested


_warned_reference_fallback = False


def _warn_reference_fallback(reason: str) -> None:
    """Once per process: auto ran a variant on the slow reference kernel, and why."""
    global _warned_reference_fallback
    if not _warned_reference_fallback:
        _warned_reference_fallback = True
        warnings.warn(
            f"lstmkit's native kernel cannot run here ({reason}); backend='auto' runs LSTM "
            "variants on the reference kernel, which is several times slower.",
            RuntimeWarning,
            stacklevel=4,
        )
