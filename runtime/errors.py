"""The two kinds of failure every command tells apart."""


class SetupError(ValueError):
    """A flag, file or folder that keeps a whole command from running; the message says the fix."""


class RecordingError(ValueError):
    """One recording (or file) that cannot be used; the message names it. The others go on."""
