"""What the books cannot answer: one line for the user each."""


class BookUnknown(ValueError):
    """The lake cannot say what the book was at that instant (no snapshot before it, or a resync)."""


class BadTime(ValueError):
    """A time that is neither ISO-8601 nor epoch milliseconds."""
