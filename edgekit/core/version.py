"""edgekit's version (one place; ``edgekit.__version__`` re-exports it)."""
__version__ = "0.1.0"
