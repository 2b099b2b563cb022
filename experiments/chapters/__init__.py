"""One module per notebook, named after it (hyphens as underscores): the chapter's results, headline
numbers (glued into the prose), findings (asserted), ledger rows and summary-table row."""
