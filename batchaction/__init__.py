"""Run numbered TODO.md tasks in dependency order, in parallel, and keep their statuses true."""

__version__ = "0.1.0"

__all__ = ["__version__"]
