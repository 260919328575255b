"""Failures of the recorder itself that end a run: one line for the user, a non-zero exit for a supervisor."""


class RecorderFailed(Exception):
    """A run ended because the recorder could not keep its promise; the message says what and what to do."""


class ConverterFailed(RecorderFailed):
    """The journal → lake converter kept dying; the journal is intact, the lake stopped updating."""


class JournalFailed(RecorderFailed):
    """Frames could not be written to the journal before exit (the disk stayed full)."""
