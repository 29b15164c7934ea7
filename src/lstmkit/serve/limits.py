"""What one request, and the server as a whole, may ask for."""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit.errors import LstmkitError


@dataclass(frozen=True)
class Limits:
    """The server's limits; each maps onto a ``lstmkit serve`` option of the same name."""

    max_body_bytes: int = 1_000_000  # a request body larger than this is refused (413)
    max_items: int = 256  # texts, sequences or sentences in one request
    max_steps: int = 10_000  # tokens or steps in one input, or pushed to a session at once
    max_tokens: int = 1_000  # tokens one generation may produce
    max_sessions: int = 1_000  # streaming sessions open at once
    session_ttl: float = 600.0  # seconds a session may stay unused before it expires

    def validate(self) -> Limits:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise LstmkitError(f"--{name.replace('_', '-')} must be a positive number, "
                                   f"got {value!r}")
        return self


class RequestError(Exception):
    """A request the server cannot answer: ``status`` is the HTTP status, ``code`` a short
    name clients can test, ``message`` says what is wrong and what to send instead."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
