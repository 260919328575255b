"""Failures of a history walk."""


class PagingError(Exception):
    """A page did not advance the cursor or broke the window; the job stops instead of looping or skipping."""


class UnknownSymbol(ValueError):
    """A requested symbol is not in /quote/contracts; the message names it."""
