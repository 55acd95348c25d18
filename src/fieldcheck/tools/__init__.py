"""Commands beside the running system, not part of it: benchmarks and the demo data."""
