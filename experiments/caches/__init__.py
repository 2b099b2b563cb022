"""Caches as the orchestrator uses them: adapters over Redis, Memcached and in-process stores, the
cache-aside and read-through patterns, the key design, the near cache, and the stand-in origins.
Imports the core and the lab."""
