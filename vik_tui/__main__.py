"""Allow `python -m vik_tui`."""

from vik_tui.cli import main

raise SystemExit(main())
