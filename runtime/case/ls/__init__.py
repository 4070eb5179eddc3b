"""LS (label store): append-only label assertions and what was known about a subject at a time."""
