"""World Streamer Producer: READY -> stream views -> IG, deterministic event ids, resumable."""
