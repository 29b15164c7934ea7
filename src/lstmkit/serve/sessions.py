"""Streaming sessions: a carried LSTM state per client, bounded in number and in age.

A session holds what one client's stream needs between requests (for an LSTM, its
(h, c) and little else), so memory grows with the number of open sessions only, and
that number is capped. Sessions unused for ``ttl`` seconds expire; expired ones are
swept when a session is opened or looked up (at most every SWEEP_EVERY seconds: a
sweep visits every session), so no background task is needed.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from lstmkit.serve.limits import RequestError

SWEEP_EVERY = 0.5  # seconds between sweeps, at most


@dataclass
class Session:
    id: str
    model: str
    stream: Any  # the served model's stream object (see lstmkit.serve.served)
    opened: float
    last_used: float
    steps: int = 0


class SessionStore:
    """Open, find and close sessions; at most ``max_sessions`` live at once."""

    def __init__(self, max_sessions: int, ttl: float, clock=time.monotonic) -> None:
        self.max_sessions, self.ttl, self.clock = max_sessions, ttl, clock
        self._sessions: dict[str, Session] = {}
        self._expired: dict[str, float] = {}  # id -> when it expired, to say "expired"
        self._guard = threading.Lock()
        self._swept = -float("inf")

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, model: str, stream: Any) -> Session:
        with self._guard:
            self._sweep()
            if len(self._sessions) >= self.max_sessions:
                raise RequestError(429, "too_many_sessions",
                                   f"{self.max_sessions} sessions are open, the server's "
                                   "limit; close finished sessions (DELETE /v1/sessions/ID) "
                                   "or start the server with a higher --max-sessions")
            now = self.clock()
            session = Session(secrets.token_urlsafe(12), model, stream, now, now)
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session:
        with self._guard:
            self._sweep()
            session = self._sessions.get(session_id)
            now = self.clock()
            if session is not None and now - session.last_used > self.ttl:
                del self._sessions[session_id]  # expired since the last sweep
                self._expired[session_id] = now
                session = None
            if session is None:
                if session_id in self._expired:
                    raise RequestError(404, "session_expired",
                                       f"session {session_id} expired after {self.ttl:g} s "
                                       "unused; open a new one")
                raise RequestError(404, "unknown_session",
                                   f"no session {session_id}; open one with POST "
                                   "/v1/models/NAME/sessions")
            session.last_used = now
            return session

    def close(self, session_id: str) -> Session:
        session = self.get(session_id)
        with self._guard:
            self._sessions.pop(session_id, None)
        return session

    def _sweep(self) -> None:
        now = self.clock()
        if now - self._swept < min(SWEEP_EVERY, self.ttl):
            return
        self._swept = now
        for session_id, session in list(self._sessions.items()):
            if now - session.last_used > self.ttl:
                del self._sessions[session_id]
                self._expired[session_id] = now
        # remember expired ids for one more ttl, so the memory of them stays bounded too
        for session_id, when in list(self._expired.items()):
            if now - when > self.ttl:
                del self._expired[session_id]
