"""Benchmarks: scripts that measure the desk under load and print figures."""
