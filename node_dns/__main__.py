import sys

from node_dns.cli import main

sys.exit(main())
