"""The `hustings` command: the composition root. Nothing imports this package."""
