"""Registry look-up with an error that lists the valid names."""

import difflib
from typing import Any

from fvcore.common.registry import Registry

from ..config import ConfigError


def lookup(registry: Registry, name: str, cfg_key: str) -> Any:
    """Return ``registry.get(name)``; an unknown name raises ``ConfigError`` naming ``cfg_key``.

    Args:
        registry: the fvcore registry to search.
        name: the registered name (usually a class name).
        cfg_key: the config key the name came from, quoted in the error.
    """
    if name in registry:
        return registry.get(name)
    valid = sorted(k for k, _ in registry)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"{cfg_key}='{name}' is not a registered {registry._name} entry.{hint} "
        f"Valid names: {', '.join(valid)}."
    )
