"""The Response Cache Decision Book's experiments: real servers, workloads, models and charts.

Every chapter of the book is a thin notebook over this package; each module is named for one idea
(see DESIGN.md). Import `experiments.charts` before drawing: it enables the book's theme and renderer.
"""
