"""Decide for your own system: a workload file in, the cache options ranked out (``python -m experiments.decide``).

`workload` reads and checks the file. The front door uses the book's own models (`experiments.models`), so
the book and the tool cannot drift apart.
"""
