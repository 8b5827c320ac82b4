"""Exceptions shared by the grading core's modules."""


class GraderBug(Exception):
    """The grader itself failed (not the student's fault): never a score, always a grader error."""
