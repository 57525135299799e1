"""The training wing: typed configuration and flags, losses, the run's outputs, resuming."""
