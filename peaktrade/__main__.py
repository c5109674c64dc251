from peaktrade.cli import main

raise SystemExit(main())
