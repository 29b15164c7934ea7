"""How a whole sequence is computed.

- ``reference``: the readable step-by-step loop, differentiated by autograd; runs
  every configuration and records gates.
- ``fused``: torch's own op (oneDNN on CPU, cuDNN on GPU); the plain cell only.
- ``native``: lstmkit's compiled kernel for every variant (see kernels/native).
- ``auto``: fused when the configuration allows it, else native when it is
  available, else reference.

The layer says which one ran in its ``last_backend`` attribute and in a debug log
line on the ``lstmkit.kernels`` logger. Asking for a backend that cannot run a
configuration raises an error; there is no silent fallback.
"""

from __future__ import annotations

import logging

BACKENDS = ("auto", "reference", "fused", "native")

log = logging.getLogger("lstmkit.kernels")


def check_backend_name(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


def native_unavailable_reason(config_reason: str | None = None) -> str | None:
    """Why the native kernel cannot run here (None when it can)."""
    from lstmkit.kernels import native

    return native.unavailable_reason() or config_reason


def resolve_backend(requested: str, fused_blocker: str | None, native_blocker: str | None) -> str:
    """The backend that will run; fused_blocker/native_blocker say why one cannot (None: it can)."""
    if requested == "auto":
        if fused_blocker is None:
            return "fused"
        return "native" if native_blocker is None else "reference"
    if requested == "fused" and fused_blocker is not None:
        raise ValueError(
            f"backend='fused' cannot run this configuration: {fused_blocker}. "
            "Use backend='auto' or backend='reference'."
        )
    if requested == "native" and native_blocker is not None:
        raise RuntimeError(f"backend='native' is not available: {native_blocker}")
    return requested
