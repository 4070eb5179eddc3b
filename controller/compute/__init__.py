"""Compute backends: where runtime entrypoints run (local supervised processes, or ECS)."""
