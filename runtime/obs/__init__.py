"""Obs/Gov (P11): the single-writer reporter's parts: its lock, governance events, decision quality
and the run report in JSON and HTML."""
