"""The one exception type the command line turns into a one-line message and exit code 1."""


class RsError(Exception):
    """A problem with the user's data, files or options. The message says what is wrong and how to fix it."""
