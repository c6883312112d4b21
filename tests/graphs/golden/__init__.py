"""Fixtures of the graph tests and the script that writes them."""
