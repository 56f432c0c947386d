"""Answering messages: the dispatcher, the pipeline and its steps, and the worker processes."""
