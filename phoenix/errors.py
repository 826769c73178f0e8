"""The one exception type Phoenix tooling raises for problems a user can fix."""


class PhoenixError(Exception):
    """A problem with the user's input or machine, with a message that says what and where."""
