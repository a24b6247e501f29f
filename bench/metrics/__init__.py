"""The metrics of `python -m bench`, one module per kind of measurement (issue 6)."""
