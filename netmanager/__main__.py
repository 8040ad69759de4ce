from netmanager.cli.main import main

raise SystemExit(main())
