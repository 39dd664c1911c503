"""The history of every generation and the durable job queue, both in one SQLite store."""
