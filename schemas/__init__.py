"""Pydantic models of the events queue-hooks consumes and the payloads it sends.

Contract §1, §3 and §5.
"""
