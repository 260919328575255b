"""Failures of the lake itself."""


class SchemaMismatch(Exception):
    """Rows or files do not match the dataset's declared Arrow schema; the message names the columns."""


class LeaseHeld(Exception):
    """Another process holds the lake's maintenance lease (compaction, prune or rebuild)."""


class RebuildError(Exception):
    """A rebuild cannot run now (a dataset without a stream converter, a compaction within its grace)."""


class JournalLocked(Exception):
    """Another process writes this journal: a second recorder on one data dir refuses to start."""
