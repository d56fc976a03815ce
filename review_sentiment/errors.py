"""The one exception type the command line turns into a one-line message and exit code 1."""


class RsError(Exception):
    """A problem with the user's data, files or options. The message says what is wrong and how to fix it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a long run; the message says what was kept and how to continue. A
    KeyboardInterrupt still, so that cleanup written for Ctrl-C runs for it too."""
