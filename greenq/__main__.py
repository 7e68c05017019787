"""``python -m greenq`` runs the CLI."""

from greenq.cli.main import main

raise SystemExit(main())
