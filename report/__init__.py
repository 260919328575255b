"""Reports over the lake: coverage (every gap classified) and its renderings. Reads; never writes data."""
