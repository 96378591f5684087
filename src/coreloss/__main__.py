"""``python -m coreloss`` runs the command line."""

from coreloss.cli import main

main()
