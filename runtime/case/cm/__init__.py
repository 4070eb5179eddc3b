"""CM (case management): the append-only case timeline and the case state folded from it."""
