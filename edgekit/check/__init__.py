"""Is the file right? Parity against PyTorch (named steps), integrity of file vs record, the one
``validate`` that the CLI and the API share. Imports ``core``, ``model`` (and targets through the registry).
"""
