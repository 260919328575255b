"""Order books from incrDepth: a pure engine, top-N snapshots, checks against depth frames, rebuilds.

For notebooks: `from books import book_at` then `book_at("./data", "BTC-USDT", "2024-06-01T14:03:07.250Z")`
(books/rebuild.py). Importing this package costs nothing until then: the converter imports only the engine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["book_at"]


def __getattr__(name: str) -> Any:
    if name == "book_at":
        from books.rebuild import book_at

        return book_at
    raise AttributeError(f"module 'books' has no attribute {name!r}")
