"""``ConfigError``: the one exception type for a config a user has to fix."""


class ConfigError(ValueError):
    """A config file or override that cannot be applied; the message says how to fix it."""
