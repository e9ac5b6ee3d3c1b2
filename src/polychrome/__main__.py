from polychrome.cli import main

raise SystemExit(main())
