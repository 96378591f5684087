"""CLI commands for structures (filled in by its issue)."""


def register(app) -> None:
    """Add this module's commands to the coreloss app."""
