"""The sub-commands of ``python -m workload``: thin layers over the packages beside them."""
