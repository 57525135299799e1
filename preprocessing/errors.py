"""The two kinds of failure every preprocessing command tells apart."""


class UsageError(Exception):
    """The whole command cannot run (missing folder, conflicting flags); one sentence."""


class RecordingError(ValueError):
    """One recording cannot be processed; the message names the file and the problem."""


class SkipRecording(Exception):
    """One recording gives nothing to write for a legitimate reason; not an error."""
