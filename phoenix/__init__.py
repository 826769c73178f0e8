"""Phoenix: tooling around the pyinfra blueprint (inventory schema, secrets, sandbox, CLI)."""

__version__ = "0.1.0"
