"""tabkeeper: billing for platforms that sell AI agents.

`__version__` is the installed distribution's version, read from its metadata: the
`version` in pyproject.toml is the one place it is written (INT-3). `tabkeeper --version`,
`/health` and the OpenAPI document all read it from here.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tabkeeper")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
