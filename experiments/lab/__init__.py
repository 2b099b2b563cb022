"""The lab: real server processes and helper processes owned by this Python process, and the
sessions, endpoints, worker pools and load generators built on them. Imports only the core."""
