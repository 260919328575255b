"""Benchmarks (`make bench`): ingest, backfill, parsing next to ccxt, storage and query figures.

Not part of the application: nothing outside bench/ imports it.
"""
