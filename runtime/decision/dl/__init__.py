"""Degrade ladder: the posture GREEN / AMBER / RED from health inputs, with hysteresis."""
