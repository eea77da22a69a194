"""Export targets, one module each (shipped as ``edgekit.converters``).

Each module defines ``CONVERTER``: an instance of ``edgekit.converter.Converter``. Modules whose
name starts with ``_`` are helpers, not targets.
"""
