"""Benchmarks of the service: webhook acknowledgement, end to end, prompt cost, memory and CPU.

Run with `python -m bench` (or `make bench`); `python -m bench --help` lists the options.
"""
