"""The operator's run controller: CLI, phases P(-1)..P12, gates, substrate and compute backends."""
