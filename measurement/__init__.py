"""The measurement wing: recording -> windows -> model -> cavity edges and LVID -> beats ->
report; and the scoring of a model on a test set of windows."""
