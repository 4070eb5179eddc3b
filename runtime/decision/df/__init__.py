"""Decision fabric: the pure decision function over point-in-time inputs and a pinned policy bundle."""
