"""CaseTrigger: turns decisions that need a human into case triggers on fp.bus.case.v1."""
