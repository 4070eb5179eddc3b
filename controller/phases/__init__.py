"""The phases P(-1)..P12: one module per phase, each an entry action plus an exit gate."""
