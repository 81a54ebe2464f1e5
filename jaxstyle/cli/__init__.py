"""Command-line front ends. Each module has ``main(argv=None) -> int``."""
