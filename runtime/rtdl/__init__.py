"""The RTDL core plane (P8): archive, identity graph, online features, context and flow binding."""
