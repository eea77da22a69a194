"""What the phone apps ship: ``bundle`` (files + card + golden cases), golden.json, Unicode tables.
"""
