"""The decision lane (P9): degrade ladder (dl), decision fabric (df), action layer (al), decision log and audit (dla)."""
