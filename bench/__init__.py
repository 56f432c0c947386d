"""Benchmarks of the service: webhook acknowledgement, end to end, prompt cost and memory.

Run with `python -m bench` (or `make bench`); `python -m bench --help` lists the options.
"""
