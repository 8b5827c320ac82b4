"""Capture of a stream with a byte cap that keeps the head and the tail."""

from __future__ import annotations


class CappedOutput:
    """Keeps the first cap/2 bytes and the last cap/2 bytes of everything fed to it."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._half = max(1, cap // 2)

    @property
    def exceeded(self) -> bool:
        return self.total > self.cap

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self._half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail += data
            if len(self._tail) > self._half:
                del self._tail[: len(self._tail) - self._half]

    def text(self) -> str:
        if self.total <= len(self._head) + len(self._tail):
            raw = bytes(self._head + self._tail)
            return raw.decode("utf-8", "replace")
        cut = self.total - len(self._head) - len(self._tail)
        head = bytes(self._head).decode("utf-8", "replace")
        tail = bytes(self._tail).decode("utf-8", "replace")
        return f"{head}\n[... {cut} bytes cut ...]\n{tail}"
