"""Benchmarks of what a user waits for, each as a ratio against a floor; run ``bench/run.py``."""
