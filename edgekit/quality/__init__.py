"""Does the file still do the task? The QA pipeline, the one QA geometry, SQuAD scoring, ``eval`` and
the accuracy gate.
"""
