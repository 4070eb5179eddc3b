"""Context store and flow binding (CSFB): join frames per flow, FlowBinding index, join readiness."""
