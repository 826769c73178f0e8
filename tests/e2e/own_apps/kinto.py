"""Kinto from PyPI in a sandbox of its own (see kinto.yml)."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
