"""Decision log and audit: lineage resolution and the hash-chained audit batches."""
