"""Action layer: simulated effects of action intents, idempotent on the action idempotency key."""
