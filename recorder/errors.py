"""Failures of the recorder itself that end a run: one line for the user, a non-zero exit for a supervisor."""


class ConverterFailed(Exception):
    """The journal → lake converter kept dying; the journal is intact, the lake stopped updating."""
