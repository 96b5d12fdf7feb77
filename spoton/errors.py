"""Errors that name the problem and the fix."""


class SpotOnError(Exception):
    """Base class: a user-facing error whose message says what to do."""


class VideoError(SpotOnError):
    """A video cannot be opened, probed or decoded."""


class MissingWeightsError(SpotOnError):
    """Model weights are absent; the message says how to provide them."""


class ChecksumError(SpotOnError):
    """A cached artifact does not match its expected checksum."""
