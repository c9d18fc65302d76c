"""The one exception for bad input: the CLI prints its message on one line and exits with 2."""


class UserError(Exception):
    """Bad input from a person or a file; the message names the file, key or value."""
