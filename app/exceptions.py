"""The exceptions every layer may raise; app.http.errors turns them into answers (JSON or a page)."""

from __future__ import annotations


class NotFound(Exception):
    """The thing asked for does not exist, or is not the viewer's to see (the two look alike)."""


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra
