"""Benchmarks (`python -m bench.<name>`): numbers for the places where speed matters."""
