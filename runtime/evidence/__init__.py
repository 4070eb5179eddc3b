"""The evidence contract: the catalogue of evidence files, the writer, and the bundle validator."""
