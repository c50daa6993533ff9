"""``assert_cfg``: reject inconsistent settings before anything is built.

Every problem found is collected, so one run of a bad config lists all of them.
"""

import difflib
import os
import re
from typing import Any, Iterable, List

from .config import CfgNode, ConfigError, get_cfg

__all__ = ["assert_cfg", "AMP_DTYPES", "BEST_METRICS", "DIVERSITY_SPACES", "ON_BAD_IMAGE_CHOICES"]


def _require(ok: bool, message: str, problems: List[str]) -> None:
    if not ok:
        problems.append(message)


def _one_of(value: Any, allowed: Iterable[Any]) -> bool:
    return value in tuple(allowed)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def assert_cfg(cfg: CfgNode) -> None:
    """Raise ``ConfigError`` listing every inconsistent setting in ``cfg``."""
    p: List[str] = []
    s = cfg.SOLVER
    _require(s.MAX_EPOCHS > 0, f"SOLVER.MAX_EPOCHS must be > 0, got {s.MAX_EPOCHS}", p)
    _require(
        s.MAX_EPOCHS <= MAX_EPOCHS_LIMIT,
        f"SOLVER.MAX_EPOCHS must be at most {MAX_EPOCHS_LIMIT:,} (schedules, ETAs and epoch "
        f"counters assume a run that can end), got {s.MAX_EPOCHS}",
        p,
    )
    _require(s.BATCH_SIZE > 0, f"SOLVER.BATCH_SIZE must be > 0, got {s.BATCH_SIZE}", p)
    _require(
        s.ACCUMULATE_STEPS >= 1,
        f"SOLVER.ACCUMULATE_STEPS must be >= 1 (1 = no accumulation), got {s.ACCUMULATE_STEPS}",
        p,
    )
    _require(s.BASE_LR > 0, f"SOLVER.BASE_LR must be > 0, got {s.BASE_LR}", p)
    _require(
        s.REFERENCE_BATCH_SIZE >= 0,
        f"SOLVER.REFERENCE_BATCH_SIZE must be >= 0 (0 = SOLVER.BATCH_SIZE), "
        f"got {s.REFERENCE_BATCH_SIZE}",
        p,
    )
    _require(s.WEIGHT_DECAY >= 0, f"SOLVER.WEIGHT_DECAY must be >= 0, got {s.WEIGHT_DECAY}", p)
    _require(
        0 <= s.WARMUP_EPOCHS < s.MAX_EPOCHS or s.WARMUP_EPOCHS == 0,
        f"SOLVER.WARMUP_EPOCHS ({s.WARMUP_EPOCHS}) must be in [0, MAX_EPOCHS={s.MAX_EPOCHS})",
        p,
    )
    c = cfg.MODEL.COMPILE
    _require(
        _one_of(c.MODE, COMPILE_MODES),
        f"MODEL.COMPILE.MODE must be one of {', '.join(COMPILE_MODES)}, got '{c.MODE}'",
        p,
    )
    _require(
        _one_of(c.BACKEND, COMPILE_BACKENDS),
        f"MODEL.COMPILE.BACKEND must be one of {', '.join(COMPILE_BACKENDS)}, got '{c.BACKEND}'",
        p,
    )
    _require(
        _one_of(s.LR_SCHEDULER, ("multistep", "cosine")),
        f"SOLVER.LR_SCHEDULER must be 'multistep' or 'cosine', got '{s.LR_SCHEDULER}'",
        p,
    )
    _require(
        list(s.STEPS) == sorted(s.STEPS) and all(0 < x for x in s.STEPS),
        f"SOLVER.STEPS must be increasing positive epochs, got {tuple(s.STEPS)}",
        p,
    )
    _require(
        _one_of(s.OPTIMIZER, ("SGD", "AdamW")),
        f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', got '{s.OPTIMIZER}'",
        p,
    )
    _require(
        s.BACKBONE_LR_FACTOR >= 0 and 0 < s.LAYER_DECAY <= 1,
        "SOLVER.BACKBONE_LR_FACTOR must be >= 0 and SOLVER.LAYER_DECAY in (0, 1], got "
        f"{s.BACKBONE_LR_FACTOR} and {s.LAYER_DECAY}",
        p,
    )
    lora = cfg.MODEL.LORA
    _require(
        lora.RANK >= 0 and lora.ALPHA > 0,
        f"MODEL.LORA.RANK must be >= 0 and MODEL.LORA.ALPHA > 0, got {lora.RANK} and {lora.ALPHA}",
        p,
    )
    for key, pattern in [("MODEL.LORA.TARGETS", lora.TARGETS)] + [
        ("MODEL.BACKBONE.FREEZE_PATTERNS", x) for x in cfg.MODEL.BACKBONE.FREEZE_PATTERNS
    ]:
        _require(_compiles(pattern), f"{key}: '{pattern}' is not a regular expression", p)
    _require(
        _one_of(s.AMP.DTYPE, AMP_DTYPES),
        f"SOLVER.AMP.DTYPE must be 'auto', 'bfloat16' or 'float16', got '{s.AMP.DTYPE}'",
        p,
    )
    _require(
        _one_of(cfg.TEST.AMP.DTYPE, AMP_DTYPES),
        f"TEST.AMP.DTYPE must be 'auto', 'bfloat16' or 'float16', got '{cfg.TEST.AMP.DTYPE}'",
        p,
    )
    _require(s.CHECKPOINT_PERIOD > 0, "SOLVER.CHECKPOINT_PERIOD must be > 0 epochs", p)
    d = cfg.DATASETS
    _require(
        d.IMBALANCE_FACTOR >= 1,
        f"DATASETS.IMBALANCE_FACTOR must be >= 1 (n_max / n_min), got {d.IMBALANCE_FACTOR}",
        p,
    )
    _require(d.MAX_PER_CLASS >= 0, "DATASETS.MAX_PER_CLASS must be >= 0", p)
    _require(
        _one_of(d.VAL_SOURCE, ("none", "train_remainder", "test")),
        f"DATASETS.VAL_SOURCE must be 'none', 'train_remainder' or 'test', got '{d.VAL_SOURCE}'",
        p,
    )
    _require(
        d.VAL_SOURCE == "none" or d.VAL_PER_CLASS > 0,
        f"DATASETS.VAL_SOURCE='{d.VAL_SOURCE}' needs DATASETS.VAL_PER_CLASS > 0",
        p,
    )
    _require(cfg.DATALOADER.SAMPLES_PER_CLASS > 0, "DATALOADER.SAMPLES_PER_CLASS must be > 0", p)
    _require(cfg.DATALOADER.NUM_WORKERS >= 0, "DATALOADER.NUM_WORKERS must be >= 0", p)
    _require(cfg.INPUT.CROP_SIZE > 0, "INPUT.CROP_SIZE must be > 0", p)
    _require(
        len(cfg.INPUT.PIXEL_MEAN) == len(cfg.INPUT.PIXEL_STD),
        "INPUT.PIXEL_MEAN and INPUT.PIXEL_STD must have the same length",
        p,
    )
    _require(cfg.TEST.EVAL_PERIOD >= 0, "TEST.EVAL_PERIOD must be >= 0", p)
    _require(cfg.TEST.ECE_BINS > 0, "TEST.ECE_BINS must be > 0", p)
    _require(
        isinstance(cfg.TEST.LABEL_SHIFT, bool),
        f"TEST.LABEL_SHIFT must be True or False, got {cfg.TEST.LABEL_SHIFT!r}",
        p,
    )
    _require(cfg.MODEL.BACKBONE.WIDTH_MULT > 0, "MODEL.BACKBONE.WIDTH_MULT must be > 0", p)
    _require(
        _one_of(cfg.MODEL.BACKBONE.NORM, ("BN", "SyncBN", "GN")),
        f"MODEL.BACKBONE.NORM must be 'BN', 'SyncBN' or 'GN', got '{cfg.MODEL.BACKBONE.NORM}'",
        p,
    )
    _require(cfg.MODEL.BACKBONE.GN_GROUPS >= 1, "MODEL.BACKBONE.GN_GROUPS must be >= 1", p)
    _require(cfg.MODEL.HEAD.COSINE_SCALE > 0, "MODEL.HEAD.COSINE_SCALE must be > 0", p)
    _check_ride(cfg, p)
    _check_distill(cfg, p)
    _check_ranges(cfg, p)
    _check_teacher_config(cfg, p)
    if p:
        raise ConfigError("Inconsistent config:\n  - " + "\n  - ".join(p))


def _check_teacher_config(cfg: CfgNode, p: List[str]) -> None:
    """MODEL.TEACHER.CONFIG_FILE, when it exists already, must be a config that loads: found
    now, not when training starts (after the run's config.yaml and log were written). A
    pipeline's teacher config is written by an earlier stage, so a missing file is checked
    only when the teacher is attached."""
    path = cfg.MODEL.TEACHER.CONFIG_FILE
    if not path or not os.path.exists(path):
        return
    try:
        get_cfg().merge_from_file(path)
    except ConfigError as e:
        p.append(f"MODEL.TEACHER.CONFIG_FILE is not a usable config: {e}")


def _check_distill(cfg: CfgNode, p: List[str]) -> None:
    """Ranges of the DiVE keys (the teacher's presence is checked when training starts)."""
    d = cfg.DISTILL
    _require(
        d.TEMPERATURE == "auto" or d.TEMPERATURE > 0,
        f"DISTILL.TEMPERATURE must be > 0 or 'auto', got {d.TEMPERATURE!r}",
        p,
    )
    _require(d.POWER > 0, f"DISTILL.POWER must be > 0, got {d.POWER}", p)
    _require(0.0 <= d.ALPHA <= 1.0, f"DISTILL.ALPHA must be in [0, 1], got {d.ALPHA}", p)
    _require(
        d.BASE_LOSS not in ("DiVELoss", "RIDELoss"),
        f"DISTILL.BASE_LOSS is the hard-label part of the DiVE loss (a single-head loss such "
        f"as 'BalancedSoftmaxLoss'), got '{d.BASE_LOSS}'",
        p,
    )


def _check_ride(cfg: CfgNode, p: List[str]) -> None:
    """Consistency of the multi-expert keys (MODEL.RIDE, MODEL.LOSS.RIDE, MODEL.ROUTER)."""
    m = cfg.MODEL
    is_ride = m.META_ARCHITECTURE == "RIDE"
    _require(
        m.RIDE.NUM_EXPERTS >= 1, f"MODEL.RIDE.NUM_EXPERTS must be >= 1, got {m.RIDE.NUM_EXPERTS}", p
    )
    _require(
        all(w > 0 for w in m.RIDE.EXPERT_WIDTHS),
        f"MODEL.RIDE.EXPERT_WIDTHS must be positive widths, got {list(m.RIDE.EXPERT_WIDTHS)}",
        p,
    )
    # RIDELoss takes every expert's logits, which only a multi-expert model produces (the
    # RIDE model itself checks that its loss takes them).
    _require(
        m.LOSS.NAME != "RIDELoss" or is_ride,
        f"MODEL.LOSS.NAME='RIDELoss' needs MODEL.META_ARCHITECTURE='RIDE', got "
        f"'{m.META_ARCHITECTURE}'",
        p,
    )
    r = m.LOSS.RIDE
    _require(
        r.BASE_LOSS != "RIDELoss",
        "MODEL.LOSS.RIDE.BASE_LOSS is each expert's own loss and cannot be 'RIDELoss'",
        p,
    )
    _require(
        0.0 <= r.TEMPERATURE_ALPHA <= 1.0,
        f"MODEL.LOSS.RIDE.TEMPERATURE_ALPHA must be in [0, 1], got {r.TEMPERATURE_ALPHA}",
        p,
    )
    _require(r.TEMPERATURE_BASE > 0, "MODEL.LOSS.RIDE.TEMPERATURE_BASE must be > 0", p)
    _require(
        _one_of(r.DIVERSITY_SPACE, DIVERSITY_SPACES),
        "MODEL.LOSS.RIDE.DIVERSITY_SPACE must be 'fitted' (the logits the base loss "
        f"fits) or 'raw' (RIDE's code), got '{r.DIVERSITY_SPACE}'",
        p,
    )
    router = m.ROUTER
    _require(
        not router.TRAIN or router.ENABLED,
        "MODEL.ROUTER.TRAIN needs MODEL.ROUTER.ENABLED (there is no router to train)",
        p,
    )
    _require(
        not router.ENABLED or (is_ride and m.RIDE.NUM_EXPERTS >= 2),
        "MODEL.ROUTER.ENABLED needs MODEL.META_ARCHITECTURE='RIDE' with "
        f"MODEL.RIDE.NUM_EXPERTS >= 2 (got '{m.META_ARCHITECTURE}', {m.RIDE.NUM_EXPERTS})",
        p,
    )
    _require(router.HIDDEN_DIM >= 1, "MODEL.ROUTER.HIDDEN_DIM must be >= 1", p)
    _require(router.TOP_K >= 1, "MODEL.ROUTER.TOP_K must be >= 1", p)
    _require(router.POS_WEIGHT > 0, "MODEL.ROUTER.POS_WEIGHT must be > 0", p)
    _require(router.THRESHOLD >= 0, "MODEL.ROUTER.THRESHOLD must be >= 0", p)
    _require(
        all(t >= 0 for t in cfg.TEST.ROUTER_THRESHOLDS),
        f"TEST.ROUTER_THRESHOLDS must be >= 0, got {list(cfg.TEST.ROUTER_THRESHOLDS)}",
        p,
    )


# A bound on SOLVER.MAX_EPOCHS far above any real schedule (RIDE: 200 CIFAR epochs, 100 on
# ImageNet-LT), so a typo'd number stops here and not in an overflow after an epoch.
MAX_EPOCHS_LIMIT = 100_000
# INPUT.AUGMENT_POLICY values besides "" (none); data/augment_policies.py builds them.
AUGMENT_POLICIES = (
    "RandAugment",
    "AutoAugment-CIFAR10",
    "AutoAugment-ImageNet",
    "AutoAugment-SVHN",
    "TrivialAugment",
)
# Metrics that TEST.BEST_METRIC may name: the higher the better (EvalHook keeps the maximum).
BEST_METRICS = ("top1", "top5", "many", "medium", "few")
ON_BAD_IMAGE_CHOICES = ("fail", "skip")
# Where RIDE's diversity KL compares the experts (modeling/ride_loss.py).
DIVERSITY_SPACES = ("fitted", "raw")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager")
# SOLVER.AMP.DTYPE / TEST.AMP.DTYPE; "auto" is resolved per device by utils.env.resolve_amp.
AMP_DTYPES = ("auto", "bfloat16", "float16")


def _check_ranges(cfg: CfgNode, p: List[str]) -> None:
    """Values that would otherwise fail deep inside a run (a torch traceback after the data
    loaded, TEST.BEST_METRIC only at the first evaluation) or silently train nonsense."""
    s, t, d, i, m = cfg.SOLVER, cfg.TEST, cfg.DATASETS, cfg.INPUT, cfg.MODEL
    _require(0 <= s.MOMENTUM < 1, f"SOLVER.MOMENTUM must be in [0, 1), got {s.MOMENTUM}", p)
    _require(s.GAMMA > 0, f"SOLVER.GAMMA (the LR step factor) must be > 0, got {s.GAMMA}", p)
    _require(
        0 <= s.WARMUP_FACTOR <= 1,
        f"SOLVER.WARMUP_FACTOR must be in [0, 1], got {s.WARMUP_FACTOR}",
        p,
    )
    _require(
        s.CLIP_GRAD_NORM >= 0,
        f"SOLVER.CLIP_GRAD_NORM must be >= 0 (0 = off), got {s.CLIP_GRAD_NORM}",
        p,
    )
    _require(t.BATCH_SIZE > 0, f"TEST.BATCH_SIZE must be > 0, got {t.BATCH_SIZE}", p)
    _require(
        _one_of(t.BEST_METRIC, BEST_METRICS),
        f"TEST.BEST_METRIC must be one of {', '.join(BEST_METRICS)}, got '{t.BEST_METRIC}'",
        p,
    )
    _require(
        t.MANY_THRESHOLD >= t.FEW_THRESHOLD >= 0,
        f"TEST.MANY_THRESHOLD ({t.MANY_THRESHOLD}) must be >= TEST.FEW_THRESHOLD "
        f"({t.FEW_THRESHOLD}) >= 0",
        p,
    )
    _require(cfg.LOG_PERIOD > 0, f"LOG_PERIOD must be > 0 iterations, got {cfg.LOG_PERIOD}", p)
    _require(
        0 <= cfg.SEED < 2**32,
        f"SEED must be in [0, 2**32) (numpy's seed range), got {cfg.SEED}",
        p,
    )
    _require(
        _one_of(d.ON_BAD_IMAGE, ON_BAD_IMAGE_CHOICES),
        f"DATASETS.ON_BAD_IMAGE must be 'fail' or 'skip', got '{d.ON_BAD_IMAGE}'",
        p,
    )
    _require(
        d.IMBALANCE_SEED >= 0, f"DATASETS.IMBALANCE_SEED must be >= 0, got {d.IMBALANCE_SEED}", p
    )
    syn = d.SYNTHETIC
    _require(
        syn.NUM_CLASSES >= 2 and syn.IMAGE_SIZE >= 1 and syn.TEST_PER_CLASS >= 1,
        "DATASETS.SYNTHETIC needs NUM_CLASSES >= 2, IMAGE_SIZE >= 1 and TEST_PER_CLASS "
        f">= 1, got {syn.NUM_CLASSES}, {syn.IMAGE_SIZE}, {syn.TEST_PER_CLASS}",
        p,
    )
    _require(i.PADDING >= 0, f"INPUT.PADDING must be >= 0, got {i.PADDING}", p)
    _require(i.TEST_RESIZE > 0, f"INPUT.TEST_RESIZE must be > 0, got {i.TEST_RESIZE}", p)
    _require(i.COLOR_JITTER >= 0, f"INPUT.COLOR_JITTER must be >= 0, got {i.COLOR_JITTER}", p)
    if i.AUGMENT_POLICY and i.AUGMENT_POLICY not in AUGMENT_POLICIES:
        close = difflib.get_close_matches(i.AUGMENT_POLICY, AUGMENT_POLICIES, n=2, cutoff=0.3)
        p.append(
            f"INPUT.AUGMENT_POLICY '{i.AUGMENT_POLICY}' is not a policy; use one of "
            f"{', '.join(AUGMENT_POLICIES)} or '' (none)"
            + (f". Did you mean: {', '.join(close)}?" if close else "")
        )
    _require(i.CUTOUT >= 0, f"INPUT.CUTOUT must be >= 0 (0 = off), got {i.CUTOUT}", p)
    _require(i.RANDAUGMENT_N >= 1, f"INPUT.RANDAUGMENT_N must be >= 1, got {i.RANDAUGMENT_N}", p)
    _require(
        0 <= i.RANDAUGMENT_M <= 30,
        f"INPUT.RANDAUGMENT_M must be in [0, 30] (torchvision's magnitude bins), got "
        f"{i.RANDAUGMENT_M}",
        p,
    )
    for key in ("MIXUP_ALPHA", "CUTMIX_ALPHA"):
        _require(i[key] >= 0, f"INPUT.{key} must be >= 0 (0 = off), got {i[key]}", p)
    _require(0 <= i.MIX_PROB <= 1, f"INPUT.MIX_PROB must be in [0, 1], got {i.MIX_PROB}", p)
    _require(
        0 <= i.MIX_OFF_EPOCHS < s.MAX_EPOCHS,
        f"INPUT.MIX_OFF_EPOCHS (the final epochs without MixUp/CutMix) must be in [0, "
        f"SOLVER.MAX_EPOCHS={s.MAX_EPOCHS}), got {i.MIX_OFF_EPOCHS}",
        p,
    )
    _require(
        all(x > 0 for x in i.PIXEL_STD),
        f"INPUT.PIXEL_STD must be positive, got {list(i.PIXEL_STD)}",
        p,
    )
    _require(
        m.NUM_CLASSES >= 0,
        f"MODEL.NUM_CLASSES must be >= 0 (0 = from the dataset), got {m.NUM_CLASSES}",
        p,
    )
    _require(
        m.BACKBONE.IN_CHANNELS >= 1,
        f"MODEL.BACKBONE.IN_CHANNELS must be >= 1, got {m.BACKBONE.IN_CHANNELS}",
        p,
    )
    _require(
        m.LOSS.DRW_EPOCH >= -1,
        f"MODEL.LOSS.DRW_EPOCH must be >= 0, or -1 for never, got {m.LOSS.DRW_EPOCH}",
        p,
    )
    _require(
        m.LOSS.RIDE.TEMPERATURE_EPOCH >= -2,
        "MODEL.LOSS.RIDE.TEMPERATURE_EPOCH must be >= 0, -1 for never or -2 for "
        f"MODEL.LOSS.DRW_EPOCH's epoch, got {m.LOSS.RIDE.TEMPERATURE_EPOCH}",
        p,
    )
    _require(
        len(t.TAU_NORM_TAUS) > 0 and all(x >= 0 for x in t.TAU_NORM_TAUS),
        f"TEST.TAU_NORM_TAUS must be a non-empty list of numbers >= 0, got {list(t.TAU_NORM_TAUS)}",
        p,
    )
    _require(
        0 <= m.LOSS.DRW_BETA < 1, f"MODEL.LOSS.DRW_BETA must be in [0, 1), got {m.LOSS.DRW_BETA}", p
    )
    _require(
        m.LOSS.FOCAL_GAMMA >= 0, f"MODEL.LOSS.FOCAL_GAMMA must be >= 0, got {m.LOSS.FOCAL_GAMMA}", p
    )
    _require(
        m.LOSS.LDAM_MAX_MARGIN > 0 and m.LOSS.LDAM_SCALE > 0,
        "MODEL.LOSS.LDAM_MAX_MARGIN and MODEL.LOSS.LDAM_SCALE must be > 0, got "
        f"{m.LOSS.LDAM_MAX_MARGIN} and {m.LOSS.LDAM_SCALE}",
        p,
    )
