"""Kinto and django-wiki from PyPI in a sandbox of their own (see apps.yml)."""

from phoenix.inventory import hosts_for

servers = hosts_for(__file__)
