"""Programs that run on the servers, uploaded by the backup and vault roles.

Standard library only: a server has Debian's python3 and nothing from PyPI.
"""
