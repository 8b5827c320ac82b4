"""Exceptions of the sandbox package."""


class BackendUnavailable(Exception):
    """No isolating backend works on this machine; grading must not proceed (fail closed)."""


class ResultFileError(Exception):
    """A result file written by sandboxed code was rejected; the message is one clear sentence."""
