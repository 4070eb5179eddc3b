"""The stream worker: the one consumer loop every plane after ingest runs.

poll a run-scoped batch -> the component's handler -> ONE Postgres transaction (state, input
positions, outbox, dead letters) -> publish the outbox -> commit the input offsets. Delivery is
at-least-once; effects are exactly-once because the input positions are recorded in the same
transaction as the state they produced, and every output carries a stable id.
"""
