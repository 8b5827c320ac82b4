"""Exceptions shared by the grading core's modules."""


class GraderBug(Exception):
    """The grader itself failed (not the student's fault): never a score, always a grader error."""


class HandinError(Exception):
    """The handin cannot be graded (its own fault); `message` is one sentence for the student."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
