"""Reaching other hosts: the allowlists, and the one HTTP client that refuses private addresses."""
