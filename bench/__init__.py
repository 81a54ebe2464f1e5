"""Side-by-side benchmarks. Run each from the checkout root as a module: ``.venv/bin/python -m bench.NAME``."""
