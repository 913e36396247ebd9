from katazuke.cli import main

raise SystemExit(main())
