"""Tasks: one module per SUPERB-style task; `tasks.get(name)` returns its definition."""
