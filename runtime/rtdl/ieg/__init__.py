"""Identity and entity graph (IEG): entities and edges with first/last seen, point-in-time queries."""
