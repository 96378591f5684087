"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class CorelossError(Exception):
    """An error caused by the user's input or environment (bad file, missing package, ...)."""
