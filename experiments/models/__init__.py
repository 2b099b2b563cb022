"""Pure maths and simulators: hit-rate models and exact replays, queues, stampede counts, costs, the
decision function. Imports only the core, never a server (a test enforces it)."""
