"""The recorder's errors: a config or topic set it cannot use, and failures that end a run (one line for
the user, a non-zero exit for a supervisor)."""


class ConfigError(ValueError):
    """The config file cannot be used; the message is one line naming the file and the problem."""


class TopicError(ValueError):
    """A channel or topic set the recorder cannot subscribe; the message is one line for the user."""


class RecorderFailed(Exception):
    """A run ended because the recorder could not keep its promise; the message says what and what to do."""


class ConverterFailed(RecorderFailed):
    """The journal → lake converter kept dying; the journal is intact, the lake stopped updating."""


class JournalFailed(RecorderFailed):
    """Frames could not be written to the journal before exit (the disk stayed full)."""
