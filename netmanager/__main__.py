from netmanager.cli import main

raise SystemExit(main())
