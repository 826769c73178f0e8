"""A local development copy of the stack in containers (`phoenix sandbox up dev`); see dev.yml."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
