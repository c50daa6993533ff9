"""Default configuration: every key ride_dive understands, with a comment on each.

Config files (YAML) and command-line overrides may only set keys that exist here; an
unknown key is an error that names the closest valid keys. Schedules are given in epochs
and converted to iterations once, by the trainer.
"""

from .config import CfgNode
from .defaults_pretrained import add_pretrained_keys

_C = CfgNode()
_C.VERSION = 1

# Where logs, checkpoints, metrics.json, TensorBoard events and results.json go.
_C.OUTPUT_DIR = "output/default"
# Global seed: model init, sampler order, augmentation and the LT subset are all derived
# from it (the LT subset uses DATASETS.IMBALANCE_SEED so it matches the papers' split).
_C.SEED = 0
# Make cuDNN/CPU kernels deterministic where PyTorch allows it (slower on GPU).
_C.DETERMINISTIC = False
# Keep freed CPU memory mapped in the process (glibc mmap/trim thresholds raised) so that a
# training step does not page-fault its activations in again every iteration: ~10 % faster
# bf16 steps on CPU, resident memory stays at its peak (ride_dive/utils/cpu_allocator.py).
_C.CPU_KEEP_FREED_MEMORY = True

# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Registered name in META_ARCH_REGISTRY: "Classifier" (single head) or "RIDE" (multi-expert,
# see the RIDE section below).
_C.MODEL.META_ARCHITECTURE = "Classifier"
# "auto" picks cuda when available, else cpu; or "cpu", "cuda", "cuda:1".
_C.MODEL.DEVICE = "auto"
# Checkpoint to initialise from (model weights only); empty = random init.
_C.MODEL.WEIGHTS = ""
# Number of classes; 0 = take it from the training dataset.
_C.MODEL.NUM_CLASSES = 0
# Store activations as channels_last (NHWC); helps with bf16 on CPU and AMP on GPU.
_C.MODEL.CHANNELS_LAST = False
# torch.compile of the training forward/backward (the model being trained only: a DiVE
# teacher, the evaluation and the router's early exit stay eager). Checkpoints hold the
# plain module's weights, so they load into an eager model. Off by default: on a 2-core CPU
# it gained a few percent at most for 80 s of compilation (BENCHMARKS.md).
_C.MODEL.COMPILE = CfgNode()
_C.MODEL.COMPILE.ENABLED = False
# torch.compile's mode: "default", "reduce-overhead", "max-autotune",
# "max-autotune-no-cudagraphs".
_C.MODEL.COMPILE.MODE = "default"
# torch.compile's backend: "inductor" (generated kernels), "aot_eager" (no code generation:
# checks the traced graph, used by the tests), "eager".
_C.MODEL.COMPILE.BACKEND = "inductor"

_C.MODEL.BACKBONE = CfgNode()
# Registered name in BACKBONE_REGISTRY: "ResNet32" (CIFAR-style), "ResNet50", "ResNeXt50",
# "ResNet152"; multi-expert (META_ARCHITECTURE "RIDE"): "RIDEResNet32", "RIDEResNet50",
# "RIDEResNeXt50".
_C.MODEL.BACKBONE.NAME = "ResNet32"
# Input image channels (1 for Fashion-MNIST, 3 otherwise).
_C.MODEL.BACKBONE.IN_CHANNELS = 3
# Multiplies every stage width (tests use 0.25 to stay tiny); 1.0 = the published model.
_C.MODEL.BACKBONE.WIDTH_MULT = 1.0
# L2-normalise the pooled feature before the head (DiVE students use this with cosine heads).
_C.MODEL.BACKBONE.NORMALIZE_FEATURES = False
# Freeze the backbone (weights and BN statistics); used by decoupled second stages.
_C.MODEL.BACKBONE.FREEZE = False
# Normalisation layers: "BN" (BatchNorm, per process), "SyncBN" (BatchNorm statistics over
# all processes of a multi-GPU run; needs CUDA/NCCL, acts as BN in one process) or "GN"
# (GroupNorm with gcd(GN_GROUPS, channels) groups: independent of the batch split).
_C.MODEL.BACKBONE.NORM = "BN"
_C.MODEL.BACKBONE.GN_GROUPS = 32

_C.MODEL.RESNET = CfgNode()
# Convolution groups and width per group of the bottleneck (ResNeXt-50 32x4d: 32 and 4;
# ResNet-50: 1 and 64). Only read by the ImageNet-style backbones.
_C.MODEL.RESNET.GROUPS = 1
_C.MODEL.RESNET.WIDTH_PER_GROUP = 64

_C.MODEL.HEAD = CfgNode()
# Registered name in HEAD_REGISTRY: "LinearHead", "CosineHead", "LWSHead", "NCMHead".
_C.MODEL.HEAD.NAME = "LinearHead"
# Cosine classifier scale s: logit_c = s * cos(f, w_c).
_C.MODEL.HEAD.COSINE_SCALE = 30.0
# Linear head bias.
_C.MODEL.HEAD.BIAS = True
# Re-initialise the head(s) before training starts from MODEL.WEIGHTS (cRT); not on
# --resume (the checkpoint has the trained head) and not with --eval-only.
_C.MODEL.HEAD.REINIT = False
# tau-normalisation applied at evaluation (W / ||W||^tau, bias dropped); < 0 = off.
_C.MODEL.HEAD.TAU_NORM = -1.0

_C.MODEL.LOSS = CfgNode()
# Registered name in LOSS_REGISTRY: "CrossEntropyLoss", "BalancedSoftmaxLoss",
# "LogitAdjustedLoss", "LDAMLoss",
# "FocalLoss"; "RIDELoss" for META_ARCHITECTURE "RIDE" (its per-expert loss is
# MODEL.LOSS.RIDE.BASE_LOSS).
_C.MODEL.LOSS.NAME = "CrossEntropyLoss"
# Focal loss gamma (1 or 2 in the papers).
_C.MODEL.LOSS.FOCAL_GAMMA = 1.0
# LogitAdjustedLoss: CE(z + tau * log pi, y) (Menon et al. 2021); 1.0 equals Balanced Softmax.
_C.MODEL.LOSS.LA_TAU = 1.0
# LDAM: largest margin (m_c = MAX_MARGIN * n_c^-1/4 / max n^-1/4) and logit scale s.
_C.MODEL.LOSS.LDAM_MAX_MARGIN = 0.5
_C.MODEL.LOSS.LDAM_SCALE = 30.0
# Deferred re-weighting: from this epoch on, class weights (1-beta)/(1-beta^n_c) normalised
# to sum to C. -1 = never (plain loss).
_C.MODEL.LOSS.DRW_EPOCH = -1
_C.MODEL.LOSS.DRW_BETA = 0.9999

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------
_C.DATASETS = CfgNode()
# Registered name in DATASET_REGISTRY: "FashionMNISTLT", "CIFAR10LT", "CIFAR100LT",
# "ImageNetLT", "PlacesLT", "INaturalist2018", "SyntheticLT".
_C.DATASETS.NAME = "FashionMNISTLT"
# Directory holding the dataset files (see docs/DATASETS.md).
_C.DATASETS.ROOT = "datasets"
# Imbalance factor n_max / n_min of the generated LT training set (CIFAR / Fashion-MNIST).
_C.DATASETS.IMBALANCE_FACTOR = 100.0
# Images of the largest class; 0 = dataset default (CIFAR-10: 5000, CIFAR-100: 500,
# Fashion-MNIST: 1000).
_C.DATASETS.MAX_PER_CLASS = 0
# Seed of the standard LT generator (NumPy global RNG seeded once; 0 in every paper).
_C.DATASETS.IMBALANCE_SEED = 0
# Validation split for generated LT sets: "none"; "train_remainder" = a balanced slice of
# the training images the LT generator did not keep; "test" = a balanced slice of the test
# set, removed from the test split. List-file datasets use their val list instead.
_C.DATASETS.VAL_SOURCE = "none"
# Images per class in a generated validation split.
_C.DATASETS.VAL_PER_CLASS = 0
# List files of list-file datasets, relative to ROOT ("" = the dataset's standard name).
_C.DATASETS.TRAIN_LIST = ""
_C.DATASETS.VAL_LIST = ""
_C.DATASETS.TEST_LIST = ""
# List-file datasets: what to do with an image that is missing or cannot be decoded.
# "fail": stop with an error naming the file and its list line. "skip": leave it out and
# count it. Missing files are then dropped when the dataset is built (a warning names them);
# an undecodable training image is replaced by the next readable image of the same class in
# the list (batch size, class balance and determinism are kept), an undecodable evaluation
# image is left out of the metrics; the loaders log how many were skipped.
_C.DATASETS.ON_BAD_IMAGE = "fail"
# List-file datasets: read images named by an absolute path outside ROOT or a path that
# climbs out of it with "..". False refuses such a line (file:line); folders symlinked into
# ROOT are inside it. Set True only for list files you trust.
_C.DATASETS.ALLOW_PATHS_OUTSIDE_ROOT = False
# Synthetic LT set (tests and demos): classes, image size, images of the largest class.
_C.DATASETS.SYNTHETIC = CfgNode()
_C.DATASETS.SYNTHETIC.NUM_CLASSES = 10
_C.DATASETS.SYNTHETIC.IMAGE_SIZE = 16
_C.DATASETS.SYNTHETIC.TEST_PER_CLASS = 20

_C.DATALOADER = CfgNode()
# Registered name in SAMPLER_REGISTRY: "InstanceBalancedSampler", "ClassAwareSampler",
# "SquareRootSampler", "ProgressivelyBalancedSampler".
_C.DATALOADER.SAMPLER = "InstanceBalancedSampler"
# Class-aware sampler: images drawn from a class before moving to the next class.
_C.DATALOADER.SAMPLES_PER_CLASS = 4
# Worker processes for image-file datasets (in-memory datasets need none).
_C.DATALOADER.NUM_WORKERS = 4
# Drop the last incomplete training batch.
_C.DATALOADER.DROP_LAST = False

_C.INPUT = CfgNode()
# Training crop size (in-memory sets: random crop of this size after zero padding; image
# files: RandomResizedCrop). Test: center crop of this size.
_C.INPUT.CROP_SIZE = 32
# Zero padding before the random crop (in-memory sets).
_C.INPUT.PADDING = 4
# Random horizontal flip during training.
_C.INPUT.HFLIP = True
# Image files: ColorJitter strength for brightness/contrast/saturation (0 = off).
_C.INPUT.COLOR_JITTER = 0.0
# Strong augmentation per training image, after the crop and flip (data/augment_policies.py,
# torchvision's): "" (none), "RandAugment" (RANDAUGMENT_N ops of magnitude RANDAUGMENT_M, of
# 0..30), "AutoAugment-CIFAR10", "AutoAugment-ImageNet", "AutoAugment-SVHN", "TrivialAugment".
_C.INPUT.AUGMENT_POLICY = ""
_C.INPUT.RANDAUGMENT_N = 2
_C.INPUT.RANDAUGMENT_M = 9
# Cutout: side in pixels of the square zeroed in each normalised training image (0 = off;
# 16 in the CIFAR AutoAugment recipes).
_C.INPUT.CUTOUT = 0
# MixUp / CutMix on training batches (data/mixing.py; torchvision transforms.v2): the Beta
# parameter of each (0 = off; both > 0: one of the two per batch, equally likely), the
# probability that a batch is mixed, and how many final epochs train unmixed. Targets become
# class distributions, which every loss but LDAM takes; the class priors of BSCE / logit
# adjustment stay the dataset's counts.
_C.INPUT.MIXUP_ALPHA = 0.0
_C.INPUT.CUTMIX_ALPHA = 0.0
_C.INPUT.MIX_PROB = 1.0
_C.INPUT.MIX_OFF_EPOCHS = 0
# In-memory sets: resize every augmented (and test) batch to this side, bilinearly, before the
# model sees it; 0 = off. E.g. 224 to fine-tune an ImageNet-pretrained trunk on 32-pixel
# CIFAR images, as LIFT does. The crop, flip, policy and Cutout work at the native size.
_C.INPUT.UPSAMPLE_SIZE = 0
# Image files: test-time resize of the shorter side before the center crop.
_C.INPUT.TEST_RESIZE = 256
# Per-channel mean/std on the 0..1 scale; empty = the dataset's own statistics.
_C.INPUT.PIXEL_MEAN = []
_C.INPUT.PIXEL_STD = []

# ---------------------------------------------------------------------------------------
# Solver (epoch-based; the trainer converts to iterations once)
# ---------------------------------------------------------------------------------------
_C.SOLVER = CfgNode()
# "SGD" (momentum, the CNN recipes) or "AdamW" (transformer fine-tuning; betas 0.9/0.999).
_C.SOLVER.OPTIMIZER = "SGD"
# Learning rate for a batch of SOLVER.REFERENCE_BATCH_SIZE images per step.
_C.SOLVER.BASE_LR = 0.1
# The batch BASE_LR was tuned for; the LR actually used is scaled linearly with the global
# batch: BASE_LR * BATCH_SIZE / REFERENCE_BATCH_SIZE (logged at start). 0 = BATCH_SIZE, i.e.
# no scaling. Dataset base configs set it to their published batch, so changing
# SOLVER.BATCH_SIZE (e.g. for more GPUs) keeps the recipe.
_C.SOLVER.REFERENCE_BATCH_SIZE = 0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 5e-4
# Apply weight decay to BN and bias parameters too (the reference codes do).
_C.SOLVER.WEIGHT_DECAY_NORM = True
# Global training batch size (all processes together), per forward/backward.
_C.SOLVER.BATCH_SIZE = 128
# Gradient accumulation: batches per optimizer step. The effective batch BATCH_SIZE x
# ACCUMULATE_STEPS drives the linear LR scaling and is logged and in results.json; an epoch
# has ceil(batches / ACCUMULATE_STEPS) steps, so checkpoints fall on step boundaries.
_C.SOLVER.ACCUMULATE_STEPS = 1
# Training epochs.
_C.SOLVER.MAX_EPOCHS = 200
# Linear warm-up length in epochs, applied per iteration, starting at WARMUP_FACTOR * lr.
_C.SOLVER.WARMUP_EPOCHS = 5
_C.SOLVER.WARMUP_FACTOR = 0.0
# "multistep" (multiply by GAMMA at each of STEPS, in epochs) or "cosine" (to 0 at the end).
_C.SOLVER.LR_SCHEDULER = "multistep"
_C.SOLVER.STEPS = (160, 180)
_C.SOLVER.GAMMA = 0.01
# Clip the gradient norm (0 = off).
_C.SOLVER.CLIP_GRAD_NORM = 0.0
# Save a resumable checkpoint every this many epochs (the last epoch is always saved).
_C.SOLVER.CHECKPOINT_PERIOD = 10
# Keep at most this many periodic checkpoints (model_final/model_best are never pruned).
_C.SOLVER.MAX_TO_KEEP = 2

_C.SOLVER.AMP = CfgNode()
# Training autocast. DTYPE "auto": bf16 on a CPU with AMX / AVX512-BF16 and on GPUs with bf16,
# fp16 (with a gradient scaler) on older GPUs, fp32 where bf16 would only be emulated; or
# "bfloat16" / "float16" as given. The dataset base configs turn it on; the run logs its choice.
_C.SOLVER.AMP.ENABLED = False
_C.SOLVER.AMP.DTYPE = "auto"

# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
_C.TEST = CfgNode()
# Evaluate every this many epochs (0 = only at the end). With a validation split the
# periodic evaluation runs on it and picks model_best.pth; the test split is used only at
# the end.
_C.TEST.EVAL_PERIOD = 0
_C.TEST.BATCH_SIZE = 512
# Metric that chooses model_best.pth on the validation split.
_C.TEST.BEST_METRIC = "top1"
# Final evaluation uses model_best.pth (when a validation split exists) instead of the
# last weights.
_C.TEST.USE_BEST = False
# Bins of the expected calibration error.
_C.TEST.ECE_BINS = 15
# Evaluation autocast, independent of SOLVER.AMP: off (fp32) by default, so the numbers of
# --eval-only, the periodic evaluation, the model zoo's eval and converted checkpoints do not
# depend on how the model was trained (bf16 moves logits by ~1e-2 and can flip router
# early exits). ENABLED True trades that for speed (docs/CONFIGS.md).
_C.TEST.AMP = CfgNode()
_C.TEST.AMP.ENABLED = False
_C.TEST.AMP.DTYPE = "auto"  # as SOLVER.AMP.DTYPE
# Multi-expert models: warn when the median expert's own top-1 is more than this many points
# below the ensemble's (experts that are incompetent alone: see docs/RIDE_DIVERSITY.md).
# <= 0 = no check.
_C.TEST.EXPERT_GAP_WARNING = 15.0
# Shot groups from training counts: many > MANY_THRESHOLD >= medium >= FEW_THRESHOLD > few.
_C.TEST.MANY_THRESHOLD = 100
_C.TEST.FEW_THRESHOLD = 20
# Also evaluate the test logits under label shift (docs/METHODS.md 7, the LADE protocol:
# Forward/Backward rho = 50, 25, 10, 5, 2 and Uniform, without and with post-compensation),
# stored as results["label_shift"]. The model runs once; the shifted sets are subsets.
_C.TEST.LABEL_SHIFT = False
# tau-normalisation sweep of a LinearHead model in the final evaluation (Kang et al. 2020;
# docs/METHODS.md 5): tau is chosen on the validation split (on test only without one, with a
# warning and "selected_on": "test"), results["tau_norm"] and OUTPUT_DIR/tau_norm.json keep
# the sweep and the test numbers of the chosen tau.
_C.TEST.TAU_NORM_SWEEP = False
# The taus swept.
_C.TEST.TAU_NORM_TAUS = [round(0.1 * i, 1) for i in range(21)]
# Post-hoc logit adjustment z - tau * log(pi) (Menon et al. 2021), tau chosen on validation
# (results.json "posthoc_la", OUTPUT_DIR/posthoc_la.json); for models trained without a prior.
_C.TEST.POSTHOC_LA_SWEEP = False
_C.TEST.POSTHOC_LA_TAUS = [round(0.1 * i, 1) for i in range(21)]  # METHODS.md 10
# Evaluators added to the default ones (EVALUATOR_REGISTRY names, run after them in this
# order); see docs/ARCHITECTURE.md for writing one.
_C.TEST.EXTRA_EVALUATORS = []

# ---------------------------------------------------------------------------------------
# RIDE: multi-expert models, the diversity loss and the expert router (docs/METHODS.md 2-4)
# ---------------------------------------------------------------------------------------
_C.MODEL.RIDE = CfgNode()
# Experts E: each has its own last stages and head; the test output is their mean logits.
_C.MODEL.RIDE.NUM_EXPERTS = 3
# Widths of the per-expert stages before WIDTH_MULT (channels of the CIFAR stages 2-3,
# bottleneck planes of the ImageNet stages 3-4). Empty = the published reduced widths:
# 24/48 (RIDE ResNet-32) and 192/384 (RIDE ResNet-50/ResNeXt-50); 32/64 and 256/512 are the
# full widths.
_C.MODEL.RIDE.EXPERT_WIDTHS = []
# Run all experts of a layer as one grouped convolution (same weights, same results; faster
# than a Python loop over experts, see tools/benchmark.py experts). False = loop.
_C.MODEL.RIDE.BATCHED_EXPERTS = True

_C.MODEL.LOSS.RIDE = CfgNode()
# Each expert's own loss, a LOSS_REGISTRY name: "LDAMLoss" (RIDE recipe, with DRW),
# "BalancedSoftmaxLoss" (the RIDE-DiVE teacher) or "CrossEntropyLoss". It reads the other
# MODEL.LOSS keys (DRW_EPOCH, LDAM_*) like a single-head loss does.
_C.MODEL.LOSS.RIDE.BASE_LOSS = "LDAMLoss"
# lambda of the diversity term lambda * mean(T)^2 * KL(softmax(z_mean/T) || softmax(z_i/T));
# < 0 rewards disagreement with the (detached) ensemble. -0.45 CIFAR, -0.2 ImageNet/iNat;
# 0 removes the term and nothing else.
_C.MODEL.LOSS.RIDE.DIVERSITY_WEIGHT = -0.45
# alpha of the distribution-aware temperature T_c = TEMPERATURE_BASE * w_c with
# w_c = (alpha * C * pi_c + 1 - alpha) / max_c(...), used from TEMPERATURE_EPOCH on (T = 1
# before). 0.05 CIFAR, 0.02 ImageNet-LT, 0.015 iNat.
_C.MODEL.LOSS.RIDE.TEMPERATURE_ALPHA = 0.05
# First epoch of the distribution-aware temperature; -1 = never (T = 1 throughout). RIDE's
# recipe starts it with DRW (the shipped configs set both). -2 = follow MODEL.LOSS.DRW_EPOCH,
# which is what configs written before this key existed meant (a message says so).
_C.MODEL.LOSS.RIDE.TEMPERATURE_EPOCH = -2
# T_base of the distribution-aware temperature.
_C.MODEL.LOSS.RIDE.TEMPERATURE_BASE = 1.0
# Where the diversity KL compares each expert with the ensemble: "fitted" = the logits the
# base loss fits (z + log n for Balanced Softmax; the raw logits for LDAM, CE, focal and DiVE,
# so RIDE's recipe is unchanged) or "raw" = the raw logits always, as RIDE's code. With a
# prior-adjusted base loss "raw" lets the experts collapse (docs/RIDE_DIVERSITY.md).
_C.MODEL.LOSS.RIDE.DIVERSITY_SPACE = "fitted"

_C.MODEL.ROUTER = CfgNode()
# Build the E-1 expert routers (RIDE "expert assignment"). With it, evaluation runs expert 1
# and continues a sample to expert k+1 only when router k says so. Off: the full ensemble,
# and router weights in a loaded checkpoint are ignored.
_C.MODEL.ROUTER.ENABLED = False
# Router training stage: freeze everything but the routers (BN statistics too); the model
# then returns {"loss_router"}. Load the stage-1 model with MODEL.WEIGHTS (it may lack
# router weights).
_C.MODEL.ROUTER.TRAIN = False
# Hidden units of each router's Linear(feature -> hidden) + ReLU.
_C.MODEL.ROUTER.HIDDEN_DIM = 16
# Top-K sorted mean logits fed to the routers (clipped to the number of classes): 30 CIFAR,
# 50 ImageNet/iNat.
_C.MODEL.ROUTER.TOP_K = 30
# pos_weight of the routers' BCE loss: larger values call more experts (accuracy/compute knob).
_C.MODEL.ROUTER.POS_WEIGHT = 100.0
# A sample goes on to the next expert when the router probability exceeds this; 0 = always
# (full ensemble), >= 1 = never (expert 1 only).
_C.MODEL.ROUTER.THRESHOLD = 0.5
# Router thresholds swept in the final evaluation's accuracy/compute table and plot
# (OUTPUT_DIR/router_tradeoff.png); empty = no sweep.
_C.TEST.ROUTER_THRESHOLDS = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0]
# Choose the router threshold on the validation split instead of using MODEL.ROUTER.THRESHOLD:
# the swept threshold with the fewest experts per image whose validation top-1 is at most this
# many points below the full ensemble's. Negative = off. Without a validation split the
# configured threshold is kept (with a warning): the test split never chooses it.
_C.TEST.ROUTER_SELECT_MAX_TOP1_DROP = -1.0

# ---------------------------------------------------------------------------------------
# Distillation (DiVE, RIDE-DiVE; docs/METHODS.md 2 and 6)
# ---------------------------------------------------------------------------------------
_C.MODEL.TEACHER = CfgNode()
# The teacher's own config file (e.g. the teacher run's OUTPUT_DIR/config.yaml) and weights.
# Needed only to train with a distillation loss (MODEL.LOSS.NAME or MODEL.LOSS.RIDE.BASE_LOSS
# = "DiVELoss"); evaluating a student never builds the teacher. The teacher is frozen, in
# eval mode (BN too), runs under no_grad on the student's augmented batch, and is never in the
# optimizer, in DDP or in the student's checkpoints. A RIDE teacher gives its full ensemble's
# mean logits (its router, if any, is ignored).
_C.MODEL.TEACHER.CONFIG_FILE = ""
_C.MODEL.TEACHER.WEIGHTS = ""

_C.DISTILL = CfgNode()
# tau of the DiVE loss, or "auto": the smallest tau in 1..10 at which the teacher's
# virtual-example distribution (at DISTILL.POWER) is flat, measured on the training set
# before training starts (see tools/analyze_virtual_examples.py).
_C.DISTILL.TEMPERATURE = 3.0
# p of the power normalisation of the teacher's target: t = softmax(p * z_t / tau).
_C.DISTILL.POWER = 0.5
# alpha: loss = (1 - alpha) * hard-label loss + alpha * tau^2 * KL(t || softmax(z_s / tau)).
_C.DISTILL.ALPHA = 0.5
# The hard-label part (a registered single-head loss): Balanced Softmax in DiVE.
_C.DISTILL.BASE_LOSS = "BalancedSoftmaxLoss"

# Console/metrics.json/TensorBoard write period in iterations.
_C.LOG_PERIOD = 20

# The keys of pretrained library trunks and fine-tuning (docs/PRETRAINED.md).
add_pretrained_keys(_C)
