"""Performance benchmarks (DESIGN §12). `python -m bench` prints ratios measured in one run."""
