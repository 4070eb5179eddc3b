"""Online feature plane (OFP): per-entity event facts and point-in-time window features."""
