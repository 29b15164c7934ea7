"""lstmkit's compiled LSTM kernel (every variant at fused speed).

Not built yet: this module is the seam the layer calls. ``unavailable_reason``
says why the kernel cannot run; ``lstm`` has the reference kernel's signature.
"""

from __future__ import annotations


def unavailable_reason() -> str | None:
    return "the native kernel is not part of this build yet"


def lstm(*args, **kwargs):
    raise RuntimeError(unavailable_reason())
