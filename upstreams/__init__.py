"""Upstreams: one module per model family; `upstreams.load(spec)` returns a frozen model."""
