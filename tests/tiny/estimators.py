"""Tiny random-weight stand-ins for the estimators that turn a source video into control images.

`promptreel.control` reads three transformers repos from the Hugging Face cache: Depth Anything V2
Small (depth), RT-DETR (person boxes) and ViTPose (body keypoints). Each `build_*` writes one of
them with the real repo's file names (`config.json`, `model.safetensors`,
`preprocessor_config.json`); the preprocessor configs are the published files, byte for byte
(sorted keys, 2-space indent: 775, 841 and 363 bytes), so the real image processors resize and
normalise as they would on a real download. Only the networks are tiny (a few thousand
parameters each, every one loads and runs in well under a second on a CPU). `BUILDERS` maps each
real repo id to its builder. Building is deterministic and leaves the caller's random state alone.

The tiny detector's class bias is set so that it finds a "person" in any frame, and the tiny
pose model's so that it is sure of every joint (random heads would find one or none by chance),
so the keypoint and drawing steps always run in tests; the detector's query count is 2, so a
frame has at most two people.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import (
    DepthAnythingConfig,
    DepthAnythingForDepthEstimation,
    Dinov2Config,
    RTDetrConfig,
    RTDetrForObjectDetection,
    RTDetrResNetConfig,
    VitPoseBackboneConfig,
    VitPoseConfig,
    VitPoseForPoseEstimation,
)

from .unet_family import TRANSFORMERS_WEIGHTS, _save_model, _seeded, _write_json

DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
DETECTOR_REPO = "PekingU/rtdetr_r50vd_coco_o365"
POSE_REPO = "usyd-community/vitpose-base-simple"

WEIGHTS = {"model.safetensors": TRANSFORMERS_WEIGHTS["model.safetensors"]}  # float32, as published

# --- the published preprocessor_config.json files ----------------------------------------------

DEPTH_PREPROCESSOR = {
    "_valid_processor_keys": [
        "images",
        "do_resize",
        "size",
        "keep_aspect_ratio",
        "ensure_multiple_of",
        "resample",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "do_pad",
        "size_divisor",
        "return_tensors",
        "data_format",
        "input_data_format",
    ],
    "do_normalize": True,
    "do_pad": False,
    "do_rescale": True,
    "do_resize": True,
    "ensure_multiple_of": 14,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "DPTImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "keep_aspect_ratio": True,
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 518, "width": 518},
    "size_divisor": None,
}
DETECTOR_PREPROCESSOR = {
    "_valid_processor_keys": [
        "images",
        "annotations",
        "return_segmentation_masks",
        "masks_path",
        "do_resize",
        "size",
        "resample",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "do_convert_annotations",
        "image_mean",
        "image_std",
        "do_pad",
        "pad_size",
        "format",
        "return_tensors",
        "data_format",
        "input_data_format",
    ],
    "do_convert_annotations": True,
    "do_normalize": False,
    "do_pad": False,
    "do_rescale": True,
    "do_resize": True,
    "format": "coco_detection",
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "RTDetrImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "pad_size": None,
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 640, "width": 640},
}
POSE_PREPROCESSOR = {
    "do_affine_transform": True,
    "do_normalize": True,
    "do_rescale": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "VitPoseImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "normalize_factor": 200.0,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 256, "width": 192},
}

# The real detector's 80 COCO classes, named as in its config (transformers' conversion took
# them from the mmdet label file; label 0 is "person"), and the real pose model's 17 COCO
# keypoints, in their order: promptreel picks people and joints by these.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
COCO_KEYPOINTS = (
    "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
    "L_Wrist", "R_Wrist", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle", "R_Ankle",
)  # fmt: skip


def build_depth_anything_v2_small(out: Path) -> None:
    """depth-anything/Depth-Anything-V2-Small-hf: a DINOv2 backbone (patch 14, 518 pixels) with
    the four-stage DPT neck and head of the real one, 8 channels wide."""
    backbone = Dinov2Config(
        hidden_size=8,
        num_hidden_layers=4,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=518,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=8,
        reassemble_factors=[4, 2, 1, 0.5],
        neck_hidden_sizes=[4, 4, 8, 8],
        fusion_hidden_size=8,
        head_hidden_size=4,
        depth_estimation_type="relative",
    )
    with _seeded():
        model = DepthAnythingForDepthEstimation(config).eval()
    _save_model(model, out, WEIGHTS)
    _write_json(out / "preprocessor_config.json", DEPTH_PREPROCESSOR)


def build_rtdetr_r50vd_coco_o365(out: Path) -> None:
    """PekingU/rtdetr_r50vd_coco_o365: a 4-stage ResNet (stages 2-4 feed the hybrid encoder),
    one encoder and one decoder layer, 16 channels, 2 queries, the 80 COCO classes."""
    backbone = RTDetrResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    config = RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[16, 32, 64],
        encoder_hidden_dim=16,
        encoder_ffn_dim=16,
        encoder_attention_heads=2,
        d_model=16,
        decoder_in_channels=[16, 16, 16],
        decoder_ffn_dim=16,
        decoder_attention_heads=2,
        decoder_layers=1,
        num_queries=2,
        num_denoising=0,
        id2label=dict(enumerate(COCO_CLASSES)),
        label2id={name: i for i, name in enumerate(COCO_CLASSES)},
    )
    with _seeded():
        model = RTDetrForObjectDetection(config).eval()
        # Every query says "person" with a score near 1, whatever the frame.
        with torch.no_grad():
            for head in (*model.model.decoder.class_embed, model.model.enc_score_head):
                head.bias.fill_(-8.0)
                head.bias[0] = 8.0
    _save_model(model, out, WEIGHTS)
    _write_json(out / "preprocessor_config.json", DETECTOR_PREPROCESSOR)


def build_vitpose_base_simple(out: Path) -> None:
    """usyd-community/vitpose-base-simple: a ViT on 256 x 192 crops (patch 16) with the simple
    decoder, 17 COCO keypoint heatmaps, 8 channels wide."""
    backbone = VitPoseBackboneConfig(
        image_size=[256, 192],
        patch_size=[16, 16],
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_ratio=2,
        out_indices=[1],
    )
    config = VitPoseConfig(
        backbone_config=backbone,
        use_simple_decoder=True,
        scale_factor=4,
        id2label=dict(enumerate(COCO_KEYPOINTS)),
        label2id={name: i for i, name in enumerate(COCO_KEYPOINTS)},
    )
    with _seeded():
        model = VitPoseForPoseEstimation(config).eval()
        # Every heatmap peaks well above the 0.3 a joint needs to be drawn.
        with torch.no_grad():
            model.head.conv.bias.fill_(1.0)
    _save_model(model, out, WEIGHTS)
    _write_json(out / "preprocessor_config.json", POSE_PREPROCESSOR)


BUILDERS: dict[str, Callable[[Path], None]] = {
    DEPTH_REPO: build_depth_anything_v2_small,
    DETECTOR_REPO: build_rtdetr_r50vd_coco_o365,
    POSE_REPO: build_vitpose_base_simple,
}
