"""``python -m experiments.bookkit``: the book runner's command line (`experiments.bookkit.runner.main`)."""

import sys

from experiments.bookkit.runner import main

sys.exit(main())
