"""The blueprint's roles: one module per concern, each with an `apply()` pyinfra deploy."""
