"""tabkeeper: billing for platforms that sell AI agents."""

__version__ = "0.1.0"
