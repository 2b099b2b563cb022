"""Building the book: the runner (execute, stage, build, refresh), the myst-nb plugin that renders the
charts offline, and the environment appendix. Imports everything else, imported by nothing."""
