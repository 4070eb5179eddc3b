"""The fraud-platform runtime: one package, one image, every component entrypoint.

`python -m runtime <component> ...` runs a component; the shared contracts (registry, schemas,
envelope, ids, evidence) live in `runtime.contracts` and `runtime.evidence`.
"""
