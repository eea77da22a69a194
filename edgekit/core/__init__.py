"""Core types every stage shares: precision, task, options (config), signature, record, tolerance,
the target plug-in interface and registry, errors and the console. Imports nothing else of edgekit.
"""
