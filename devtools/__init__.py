"""Development helpers: an embedded Redis server, the simulator launcher and the ``make run`` runner.

Not used by the web or worker processes in production.
"""
