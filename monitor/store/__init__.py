"""The store: the schema, the one writer, and every SQL statement (reads.py, writes.py)."""
