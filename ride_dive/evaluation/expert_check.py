"""A warning a user sees when a multi-expert model's experts are incompetent on their own.

RIDE's ensemble is meant to be a mean of experts that are each nearly as accurate as the
whole (RIDE's LDAM-DRW experts are within a few points of their ensemble). When the
diversity term outweighs the base loss, the experts instead learn individually wrong
predictions whose mean alone is right: the ensemble's top-1 hides it, the per-expert top-1
shows it. This module turns that into one log line naming the cause and the keys to change.
"""

import statistics
from typing import Mapping, Optional

__all__ = ["expert_competence_warning"]


def expert_competence_warning(results: Mapping, max_gap: float) -> Optional[str]:
    """The warning for ``results`` (an evaluation dict), or None when the experts are fine.

    Warns when the median expert's top-1 is more than ``max_gap`` points below the
    ensemble's (``TEST.EXPERT_GAP_WARNING``; <= 0 turns the check off).

    Args:
        results: a dict with ``"top1"`` and ``"expert_top1"`` (percentages), as
            ``inference_on_dataset`` returns for a multi-expert model.
        max_gap: the largest tolerated gap, in points.
    """
    experts = results.get("expert_top1")
    if max_gap <= 0 or not experts or len(experts) < 2 or results.get("top1") is None:
        return None
    ensemble = float(results["top1"])
    gap = ensemble - statistics.median(float(e) for e in experts)
    if gap <= max_gap:
        return None
    listed = " / ".join(f"{float(e):.1f}" for e in experts)
    return (
        f"The experts are individually far less accurate than their ensemble: top-1 of each "
        f"expert {listed} against {ensemble:.2f} for the ensemble (median gap {gap:.1f} "
        f"points > TEST.EXPERT_GAP_WARNING {max_gap:g}). The diversity term has outweighed "
        "the experts' base loss, so each expert disagrees with the others where its base "
        "loss does not look, and only their mean is right; such an ensemble is usually "
        "head-biased, and a router cannot stop after its first experts. With a "
        "prior-adjusted base loss (BalancedSoftmaxLoss) set MODEL.LOSS.RIDE.DIVERSITY_SPACE "
        "'fitted' (the default); otherwise make MODEL.LOSS.RIDE.DIVERSITY_WEIGHT smaller in "
        "magnitude (docs/RIDE_DIVERSITY.md)."
    )
