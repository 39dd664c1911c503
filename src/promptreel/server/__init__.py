"""The HTTP service: `promptreel serve` (API, web page and worker in one process)."""
