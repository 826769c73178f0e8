"""bench/rto.py's environment; see rto.yml."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
