"""Cooperative cancellation: the caller sets a token, the engine checks it between batches."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised inside the engine when its CancelToken was set."""


class CancelToken:
    """A thread-safe flag. Setting it from any thread stops the running call within one batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def reset(self) -> None:
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()
