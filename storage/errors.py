"""Failures of the lake itself."""


class SchemaMismatch(Exception):
    """Rows or files do not match the dataset's declared Arrow schema; the message names the columns."""


class JournalLocked(Exception):
    """Another process writes this journal: a second recorder on one data dir refuses to start."""
