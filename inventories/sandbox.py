"""The sandbox environment: throwaway containers (`phoenix sandbox up sandbox`); see sandbox.yml."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
