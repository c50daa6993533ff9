"""Default keys of pretrained library trunks and fine-tuning (docs/PRETRAINED.md): the
library model and its weights, LoRA, name-pattern freezing, the backbone's learning rate and
layer-wise decay, and the stages RIDE's experts copy from such a trunk."""

from .config import CfgNode

__all__ = ["add_pretrained_keys"]


def add_pretrained_keys(cfg: CfgNode) -> None:
    """Add the keys to ``cfg`` (the defaults), each with its comment."""
    # Library trunks ("TimmBackbone", "TorchvisionBackbone"; multi-expert "RIDETimmBackbone",
    # "RIDETorchvisionBackbone"; docs/PRETRAINED.md): the library's model name, e.g.
    # "vit_base_patch16_224" (timm.create_model) or "resnet50" (torchvision.models.get_model).
    cfg.MODEL.BACKBONE.ARCH = ""
    # Pretrained trunk weights: a local file (.pth/.pt/.bin read with weights_only=True, or
    # .safetensors), "timm:<model name>" / "torchvision:<weights enum>" (downloaded by that library
    # when online), or "" (random initialisation). The pretrained classifier is not used.
    cfg.MODEL.BACKBONE.PRETRAINED = ""
    # Expected sha256 of a local PRETRAINED file ("" = not checked).
    cfg.MODEL.BACKBONE.PRETRAINED_SHA256 = ""
    # Input side for library transformers (timm img_size / torchvision image_size; 0 = default).
    cfg.MODEL.BACKBONE.IMG_SIZE = 0
    # Stochastic depth of library trunks (timm drop_path_rate, torchvision stochastic_depth_prob).
    cfg.MODEL.BACKBONE.DROP_PATH_RATE = 0.0
    # Freeze parameters whose full name (e.g. "backbone.model.patch_embed.proj.weight") matches
    # any of these regular expressions (re.search); their BatchNorm statistics are not frozen.
    cfg.MODEL.BACKBONE.FREEZE_PATTERNS = []

    # LoRA (Hu et al. 2022) on the backbone's nn.Linear layers whose names match TARGETS: each
    # gets a trainable low-rank update W + (ALPHA / RANK) * B A (B starts at 0, so the model starts
    # as it was) and every other backbone parameter is frozen; heads train as usual. RANK 0 = off.
    cfg.MODEL.LORA = CfgNode()
    cfg.MODEL.LORA.RANK = 0
    cfg.MODEL.LORA.ALPHA = 16.0
    # re.search on module names; the default is timm's ViT attention and MLP layers.
    cfg.MODEL.LORA.TARGETS = r"(qkv|proj|fc1|fc2)$"

    # Fine-tuning: the backbone's learning rate is BACKBONE_LR_FACTOR x the heads' (0.1 is common
    # for pretrained trunks), and with LAYER_DECAY < 1 each backbone layer group's is further
    # multiplied by LAYER_DECAY ** (depth - its depth) (BEiT/MAE layer-wise decay; the depth of a
    # timm model's parameters comes from timm's own grouping). 1.0 = one learning rate.
    cfg.SOLVER.BACKBONE_LR_FACTOR = 1.0
    cfg.SOLVER.LAYER_DECAY = 1.0

    # RIDETimmBackbone / RIDETorchvisionBackbone: the final stages (ResNet: 2 = layer3-4, RIDE's
    # split) or transformer blocks (ViT) each expert owns, copied from the pretrained trunk.
    cfg.MODEL.RIDE.EXPERT_STAGES = 2
