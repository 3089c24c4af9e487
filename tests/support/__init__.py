"""What the tests share: seeding, receivers, the command line, hostile inputs, worker processes.

Test modules import from here only, never from one another; the fixtures live in `fixtures.py`.
"""
