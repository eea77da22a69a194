"""Making files: plan (every job checked once), stage (convert -> hash -> validate -> record), install
(the atomic, locked, durable commit of a file and its record), preflight (user errors up front).
"""
