from devops_agent.cli import main

raise SystemExit(main())
