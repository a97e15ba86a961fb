"""Scenarios (docs/scenarios.md): a file's format, and running it on a fresh database.

`scenario` reads a scenario file into frozen values (with `steps` and `timeline`: the
steps it may hold, and the timeline its steps and times become); `run` plays it through
the services with a simulated clock and the sandbox provider (`tabkeeper simulate`, the
golden scenarios, the demo); `report` is the JSON it answers. The format is file parsing,
not billing rules: those stay in the pure domain, which this package calls.
"""
