"""OpenPose-style skeletons: the control images of the SD 1.5 openpose ControlNet.

The OpenPose network itself ships only as pickled weights, which promptreel does not load. So
the body keypoints come from two safetensors models through transformers, as its ViTPose
documentation does it: RT-DETR finds the people (COCO label "person"), then ViTPose places the
17 COCO keypoints inside each person's box. What the ControlNet was trained on is OpenPose's
drawing, so the COCO keypoints are mapped to OpenPose's 18 (the neck, which COCO lacks, is the
midpoint of the shoulders) and drawn as ControlNet's annotator (controlnet_aux's
`draw_bodypose`) draws them: on black, the 17 limbs as filled ellipses at 60% of their colour,
then the 18 joints as filled circles in full colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from transformers import AutoImageProcessor, RTDetrForObjectDetection, VitPoseForPoseEstimation

# A person box, and a keypoint, below this score are left out (the threshold of the ViTPose
# documentation for boxes, and of OpenPose's own drawing for joints).
PERSON_THRESHOLD = 0.3
KEYPOINT_THRESHOLD = 0.3

# Frames a detector pass: RT-DETR sees 640 x 640 pixels a frame.
BATCH = 4

# OpenPose's 18 body keypoints, each as the COCO keypoint it is (None: the neck, made from the
# shoulders). OpenPose order: nose, neck, right shoulder, elbow, wrist, left shoulder, elbow,
# wrist, right hip, knee, ankle, left hip, knee, ankle, right eye, left eye, right ear, left ear.
# COCO order: nose, left eye, right eye, left ear, right ear, left shoulder, right shoulder,
# left elbow, right elbow, left wrist, right wrist, left hip, right hip, left knee, right knee,
# left ankle, right ankle.
COCO_FOR_OPENPOSE: tuple[int | None, ...] = (
    0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3
)  # fmt: skip
NECK = 1
COCO_LEFT_SHOULDER, COCO_RIGHT_SHOULDER = 5, 6

# OpenPose's limbs as pairs of its keypoints (0-based), in the order the annotator draws them:
# neck to shoulders, right arm, left arm, right leg, left leg, neck to nose, then the face.
# (The annotator's table has two more, ear to shoulder, which it never draws.)
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
# RGB: limb i takes colour i, keypoint i takes colour i.
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
STICKWIDTH = 4  # half the thickness of a limb, in pixels
JOINT_RADIUS = 4
LIMB_OPACITY = 0.6


@dataclass
class PoseEstimator:
    detector_processor: Any
    detector: RTDetrForObjectDetection
    pose_processor: Any
    pose_model: VitPoseForPoseEstimation
    device: str
    dtype: torch.dtype


def load(
    detector_folder: Path, pose_folder: Path, *, device: str, dtype: torch.dtype
) -> PoseEstimator:
    """RT-DETR and ViTPose with their processors (safetensors only, no remote code)."""
    detector = RTDetrForObjectDetection.from_pretrained(
        detector_folder, use_safetensors=True, dtype=dtype
    )
    pose_model = VitPoseForPoseEstimation.from_pretrained(
        pose_folder, use_safetensors=True, dtype=dtype
    )
    return PoseEstimator(
        AutoImageProcessor.from_pretrained(detector_folder, trust_remote_code=False),
        detector.to(device).eval(),
        AutoImageProcessor.from_pretrained(pose_folder, trust_remote_code=False),
        pose_model.to(device).eval(),
        device,
        dtype,
    )


def skeletons(estimator: PoseEstimator, frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB frames -> uint8 (T, H, W, 3) OpenPose drawings."""
    height, width = frames.shape[1:3]
    out = np.empty_like(frames)
    for start in range(0, len(frames), BATCH):
        batch = frames[start : start + BATCH]
        boxes = detect_people(estimator, batch)
        for offset, people in enumerate(keypoints(estimator, batch, boxes)):
            out[start + offset] = draw_bodypose(height, width, people)
    return out


@torch.inference_mode()
def detect_people(estimator: PoseEstimator, frames: np.ndarray) -> list[np.ndarray]:
    """Each frame's person boxes, float32 (N, 4) in COCO form (x, y, width, height), in pixels."""
    height, width = frames.shape[1:3]
    processor, model = estimator.detector_processor, estimator.detector
    inputs = processor(images=list(frames), return_tensors="pt", input_data_format="channels_last")
    outputs = model(pixel_values=inputs["pixel_values"].to(estimator.device, estimator.dtype))
    # post-processing in float32: in half precision, pixel corners past 1024 move in 1-pixel steps
    outputs.logits = outputs.logits.float()
    outputs.pred_boxes = outputs.pred_boxes.float()
    results = processor.post_process_object_detection(
        outputs, threshold=PERSON_THRESHOLD, target_sizes=[(height, width)] * len(frames)
    )
    people = [int(i) for i, name in (model.config.id2label or {}).items() if name == "person"]
    boxes = []
    for result in results:
        keep = torch.isin(result["labels"].cpu(), torch.tensor(people))
        xyxy = result["boxes"].cpu()[keep].numpy().astype(np.float32)
        # a box reaching past the frame would make ViTPose's crop mostly padding
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, width)
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, height)
        coco = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        boxes.append(coco[(coco[:, 2] >= 1) & (coco[:, 3] >= 1)])
    return boxes


@torch.inference_mode()
def keypoints(
    estimator: PoseEstimator, frames: np.ndarray, boxes: Sequence[np.ndarray]
) -> list[list[np.ndarray]]:
    """Each frame's people as OpenPose (18, 2) pixel positions, NaN where a joint is not seen."""
    found = [i for i, frame_boxes in enumerate(boxes) if len(frame_boxes)]
    poses: list[list[np.ndarray]] = [[] for _ in frames]
    if not found:  # ViTPose runs on the people's crops: no person, nothing to run
        return poses
    processor, model = estimator.pose_processor, estimator.pose_model
    images = [frames[i] for i in found]
    crops = [boxes[i] for i in found]
    inputs = processor(images, boxes=crops, return_tensors="pt", input_data_format="channels_last")
    outputs = model(pixel_values=inputs["pixel_values"].to(estimator.device, estimator.dtype))
    outputs.heatmaps = outputs.heatmaps.float()  # the processor's post-processing is numpy
    results = processor.post_process_pose_estimation(outputs, boxes=crops)
    for i, frame_results in zip(found, results, strict=True):
        poses[i] = [
            openpose_keypoints(person["keypoints"].numpy(), person["scores"].numpy())
            for person in frame_results
        ]
    return poses


def openpose_keypoints(coco: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """COCO (17, 2) keypoints and their (17,) scores -> OpenPose (18, 2), NaN below threshold."""
    seen = scores >= KEYPOINT_THRESHOLD
    out = np.full((len(COCO_FOR_OPENPOSE), 2), np.nan, np.float32)
    for index, source in enumerate(COCO_FOR_OPENPOSE):
        if source is not None and seen[source]:
            out[index] = coco[source]
    if seen[COCO_LEFT_SHOULDER] and seen[COCO_RIGHT_SHOULDER]:
        out[NECK] = (coco[COCO_LEFT_SHOULDER] + coco[COCO_RIGHT_SHOULDER]) / 2
    return out


def draw_bodypose(height: int, width: int, people: Sequence[np.ndarray]) -> np.ndarray:
    """OpenPose's drawing of `people` (each (18, 2) pixel x, y; NaN: not drawn), uint8 RGB.

    As ControlNet's annotator: every limb (both ends seen) as an ellipse along it, STICKWIDTH
    thick on each side, in its colour; the whole canvas then dimmed to 60% (on black, limbs at
    60% opacity); then every seen joint as a disc of radius 4 in its colour, over the limbs.
    Limbs go one colour at a time across all people, then joints likewise, as there.
    """
    canvas = np.zeros((height, width, 3), np.uint8)
    # 17 limbs, 18 colours: the last colour is only a joint's
    for (start, end), color in zip(LIMBS, COLORS, strict=False):
        for person in people:
            if np.isnan(person[[start, end]]).any():
                continue
            (x0, y0), (x1, y1) = person[start], person[end]
            length = math.hypot(x0 - x1, y0 - y1)
            angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
            polygon = cv2.ellipse2Poly(
                (int((x0 + x1) / 2), int((y0 + y1) / 2)),
                (int(length / 2), STICKWIDTH),
                int(angle),
                0,
                360,
                1,
            )
            cv2.fillConvexPoly(canvas, polygon, color)
    canvas = (canvas * LIMB_OPACITY).astype(np.uint8)
    for joint, color in enumerate(COLORS):
        for person in people:
            if np.isnan(person[joint]).any():
                continue
            x, y = person[joint]
            cv2.circle(canvas, (int(x), int(y)), JOINT_RADIUS, color, thickness=-1)
    return canvas
