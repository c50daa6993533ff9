"""``lookup``: a registered name returns its object; any other is a ConfigError naming the
config key, the closest valid name (when one is close) and every valid name, sorted."""

import pytest
from fvcore.common.registry import Registry

from ride_dive.config import ConfigError
from ride_dive.utils.registry import lookup


@pytest.fixture
def registry():
    reg = Registry("WIDGET")

    @reg.register()
    class Sprocket:
        pass

    @reg.register()
    class Gear:
        pass

    @reg.register()
    class GearBox:
        pass

    return reg


def test_a_registered_name_returns_the_registered_object(registry):
    cls = lookup(registry, "Gear", "MODEL.WIDGET")
    assert cls is registry.get("Gear") and cls.__name__ == "Gear"


def test_a_close_name_gets_a_suggestion_and_the_sorted_valid_names(registry):
    with pytest.raises(ConfigError) as err:
        lookup(registry, "Sprokcet", "MODEL.WIDGET.NAME")
    assert str(err.value) == (
        "MODEL.WIDGET.NAME='Sprokcet' is not a registered WIDGET entry. Did you mean "
        "'Sprocket'? Valid names: Gear, GearBox, Sprocket."
    )


def test_the_suggestion_is_the_single_closest_name(registry):
    with pytest.raises(ConfigError, match=r"Did you mean 'GearBox'\? Valid") as err:
        lookup(registry, "GearBx", "K")
    assert str(err.value).count("Did you mean") == 1


def test_a_far_name_gets_no_suggestion(registry):
    with pytest.raises(ConfigError) as err:
        lookup(registry, "Zzz", "K")
    assert str(err.value) == (
        "K='Zzz' is not a registered WIDGET entry. Valid names: Gear, GearBox, Sprocket."
    )


def test_names_are_case_sensitive(registry):
    with pytest.raises(ConfigError, match="Did you mean 'Gear'"):
        lookup(registry, "gear", "K")


def test_an_empty_registry_lists_no_names():
    with pytest.raises(ConfigError) as err:
        lookup(Registry("EMPTY"), "Anything", "K")
    assert str(err.value) == "K='Anything' is not a registered EMPTY entry. Valid names: ."


def test_config_error_is_a_value_error(registry):
    with pytest.raises(ValueError):
        lookup(registry, "Nope", "K")


def test_a_real_registry_names_its_config_key():
    from ride_dive.modeling import LOSS_REGISTRY

    with pytest.raises(
        ConfigError,
        match=r"^MODEL\.LOSS\.NAME='FocalLos' is not a registered "
        r"LOSS entry\. Did you mean 'FocalLoss'\?",
    ):
        lookup(LOSS_REGISTRY, "FocalLos", "MODEL.LOSS.NAME")
