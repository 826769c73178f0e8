"""The blueprint's roles: one module per concern, each with an `apply()` pyinfra deploy."""

from phoenix import operation_order

operation_order.install()  # every deploy file imports its roles before its first operation
