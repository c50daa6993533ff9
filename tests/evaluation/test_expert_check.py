"""The incompetent-experts warning (TEST.EXPERT_GAP_WARNING)."""

from ride_dive.evaluation import expert_competence_warning


def test_warns_when_the_experts_are_near_chance_but_the_ensemble_is_not():
    # The collapsed 6-expert BSCE teacher of the CIFAR-10-LT report.
    results = {"top1": 68.45, "expert_top1": [20.4, 18.9, 23.9, 18.8, 21.1, 17.7]}
    message = expert_competence_warning(results, 15.0)
    assert message is not None
    for needle in (
        "20.4 / 18.9",
        "68.45",
        "MODEL.LOSS.RIDE.DIVERSITY_SPACE",
        "MODEL.LOSS.RIDE.DIVERSITY_WEIGHT",
        "TEST.EXPERT_GAP_WARNING 15",
    ):
        assert needle in message
    assert "median gap 48.8" in message  # 68.45 - (18.9 + 20.4) / 2


def test_no_warning_for_competent_experts_or_when_off():
    ride_ldam = {"top1": 73.19, "expert_top1": [69.5, 69.4, 69.6, 69.4]}
    assert expert_competence_warning(ride_ldam, 15.0) is None
    collapsed = {"top1": 68.45, "expert_top1": [20.4, 18.9, 23.9]}
    assert expert_competence_warning(collapsed, 0.0) is None
    assert expert_competence_warning({"top1": 70.0}, 15.0) is None  # single head
    # The median decides: one weak expert among competent ones is not a collapse.
    one_weak = {"top1": 80.0, "expert_top1": [20.0, 78.0, 79.0]}
    assert expert_competence_warning(one_weak, 15.0) is None
    # Exactly at the limit is tolerated.
    assert expert_competence_warning({"top1": 80.0, "expert_top1": [65.0, 65.0]}, 15.0) is None
