"""Production: real servers over SSH; see prod.yml and secrets/prod.yml.age."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
