"""The launch-day rehearsal: the design the decide engine ranks first, stood up on real local servers and driven
through a workload's day (`run`), at a scale and speed this machine carries (`plan`), by task processes
(`task_worker`) while the source's changes reach the cache by an outbox and by a dual write (`change_worker`)."""
