"""Latency (``bench``) and the reports (markdown, JSON, HTML) built from records.
"""
