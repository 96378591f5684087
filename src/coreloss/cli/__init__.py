"""The ``coreloss`` command: a thin typer layer over the package.

Each sub-module registers its commands on the one app through ``register(app)``. User errors
(:class:`coreloss.errors.CorelossError`, bad files, missing inputs) print one line and exit 1.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from coreloss import __version__
from coreloss.errors import CorelossError

_COMMAND_MODULES = ("structures", "sites", "dataset", "models", "measured")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="coreloss: O K-edge ELNES/XANES -> local O-site properties, and back.")


def _version(value: bool):
    if value:
        typer.echo(f"coreloss {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    """coreloss command line."""


for _name in _COMMAND_MODULES:
    importlib.import_module(f"coreloss.cli.{_name}").register(app)


# Library noise a user cannot act on: multiprocessing's resource tracker (run by Dask workers and
# process pools) reporting semaphores at shutdown, and deprecation notices of dependencies.
QUIET_WARNINGS = ("ignore:resource_tracker:UserWarning", "ignore::DeprecationWarning",
                  "ignore::FutureWarning")


def _quiet() -> None:
    """Filter :data:`QUIET_WARNINGS` here and in every process started from here (the resource
    tracker and workers get them through ``sys.warnoptions`` and ``PYTHONWARNINGS``)."""
    import builtins
    import warnings
    for opt in QUIET_WARNINGS:
        if opt not in sys.warnoptions:
            sys.warnoptions.append(opt)
        action, message, category = opt.split(":")
        warnings.filterwarnings(action, message=message, category=getattr(builtins, category))
    env = [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    os.environ["PYTHONWARNINGS"] = ",".join(env + [o for o in QUIET_WARNINGS if o not in env])


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _quiet()
    try:
        app(standalone_mode=False)
    except CorelossError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(1)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        # click usage errors (typer may vendor its own click): shown as click shows them, no traceback
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
