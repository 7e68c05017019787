"""``python -m greenq`` runs the CLI."""

from greenq.cli import main

raise SystemExit(main())
