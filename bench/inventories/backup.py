"""bench/backup.py's environment; see backup.yml."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
