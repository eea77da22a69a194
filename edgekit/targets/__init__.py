"""Export targets, one package each. A package's ``__init__`` defines ``CONVERTER`` (an instance of
``edgekit.core.target.Converter``) and holds everything that knows its format: converter, runner,
flags, the reader that checks a file's bytes (``inspect``), extra checks. The registry finds them;
no other module lists targets. Packages whose name starts with ``_`` are helpers, not targets.
"""
