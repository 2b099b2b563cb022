"""Experiments on real servers: each starts or uses servers of the lab, drives them with bounded
load, and returns tables the chapters judge. Imports the core, the lab, caches and models."""
