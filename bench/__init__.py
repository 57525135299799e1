"""Benchmarks: speed against the original tool's loop (`python -m bench`) and measurement
accuracy on synthetic recordings (`python -m bench.accuracy`)."""
