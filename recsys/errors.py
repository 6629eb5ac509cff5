"""User-facing errors.

Everything a user can cause (bad files, bad queries, malformed catalogues, missing weights)
raises a subclass of :class:`RecsysError`; the CLI prints its message on one line and the app
shows it in the page, so messages must be complete sentences that say what to do.
"""


class RecsysError(Exception):
    """Base class for errors whose message is shown to the user as is."""


class InputError(RecsysError):
    """A query or an uploaded file that cannot be used (corrupt, oversized, wrong format, empty)."""


class CatalogueError(RecsysError):
    """A catalogue that cannot be loaded at all (no manifest, no valid rows, wrong columns)."""


class MissingWeightsError(RecsysError):
    """Pretrained weights that are not installed; the message says how to get them."""


class DatasetError(RecsysError):
    """An interaction dataset that fails validation."""


class ConfigError(RecsysError):
    """A setting (config file key, ``RECSYS_*`` variable, option) of the wrong type or out of range."""
