"""CaseTrigger: turns decisions that need a human into case triggers on the case topic (FP_BUS_CASE_TRIGGERS_V1)."""
