"""Control images drawn from a source video: what a ControlNet is given for each kind.

The estimators run on tiny random-weight stand-ins placed under their real repo ids
(`tiny/estimators.py`), so these tests check the plumbing and the drawing, not the quality of
the depth or of the keypoints.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptreel import control
from promptreel.control import pose
from promptreel.errors import ModelNotDownloaded

DEPTH = "depth-anything/Depth-Anything-V2-Small-hf"
DETECTOR = "PekingU/rtdetr_r50vd_coco_o365"
VITPOSE = "usyd-community/vitpose-base-simple"
CANNY = {"low_threshold": 100.0, "high_threshold": 200.0}
CPU = {"device": "cpu", "dtype": torch.float32}


@pytest.fixture(autouse=True)
def nothing_loaded():
    """Each test starts and ends with no estimator kept in memory."""
    control.unload()
    yield
    control.unload()


def noise(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), np.uint8)


# --- canny -------------------------------------------------------------------------------------


def test_canny_draws_white_edges_on_a_squares_border() -> None:
    frames = np.zeros((1, 64, 64, 3), np.uint8)
    frames[0, 16:48, 16:48] = 255
    edges = control.extract("canny", frames, params=CANNY, **CPU)

    assert edges.shape == frames.shape and edges.dtype == np.uint8
    assert set(np.unique(edges)) == {0, 255}
    assert (edges[..., 0] == edges[..., 1]).all() and (edges[..., 0] == edges[..., 2]).all()
    ys, xs = np.nonzero(edges[0, :, :, 0])
    # every edge pixel is on the square's border (the step lies between pixels 15|16 and 47|48)
    on_border = (np.isin(ys, [15, 16, 47, 48]) & (xs >= 15) & (xs <= 48)) | (
        np.isin(xs, [15, 16, 47, 48]) & (ys >= 15) & (ys <= 48)
    )
    assert on_border.all()
    # and the whole border is traced: every row and column of the square has edge pixels
    assert set(range(16, 48)) <= set(ys.tolist()) and set(range(16, 48)) <= set(xs.tolist())
    # inside and outside stay black
    assert not edges[0, 20:44, 20:44].any() and not edges[0, :10].any()


def test_canny_higher_thresholds_give_fewer_edges() -> None:
    frames = noise(2, 48, 40)
    low = control.extract("canny", frames, params=CANNY, **CPU)
    high = control.extract(
        "canny", frames, params={"low_threshold": 300.0, "high_threshold": 600.0}, **CPU
    )
    assert low.shape == high.shape == frames.shape
    assert 0 < np.count_nonzero(high) < np.count_nonzero(low)


# --- depth -------------------------------------------------------------------------------------


def test_depth_maps_are_grey_at_the_frame_size_and_normalised_over_the_clip(hub) -> None:
    hub(DEPTH)
    frame = noise(1, 45, 67)  # odd sizes, and not a multiple of the model's patch
    clip = np.concatenate([frame, frame, noise(1, 45, 67, seed=1)])
    maps = control.extract("depth", clip, params={}, **CPU)

    assert maps.shape == clip.shape and maps.dtype == np.uint8
    assert (maps[..., 0] == maps[..., 1]).all() and (maps[..., 0] == maps[..., 2]).all()
    assert maps[0].tobytes() == maps[1].tobytes()  # the same frame, the same control image
    # one minimum and one maximum for the clip, not one per frame
    assert maps.min() == 0 and maps.max() == 255


def test_depth_normalisation_spans_the_clip_not_each_frame(hub, monkeypatch) -> None:
    """A frame whose nearest point is half as near as the clip's nearest is half as bright."""
    hub(DEPTH)

    def fake_model(pixel_values):
        # left to right, frame 0 predicts a ramp from 1 to 2, frame 1 from 1 to 3
        _, _, h, w = pixel_values.shape
        ramp = torch.linspace(0, 1, w).expand(h, w)
        return type("Output", (), {"predicted_depth": torch.stack([1 + ramp, 1 + 2 * ramp])})()

    clip = noise(2, 32, 32)
    control.extract("depth", clip, params={}, **CPU)  # loads the estimator, which is kept
    assert control._loaded is not None
    monkeypatch.setattr(control._loaded.estimator, "model", fake_model)
    maps = control.extract("depth", clip, params={}, **CPU)
    assert maps[:, :, 0].max() < 10  # both frames' far edge is the clip's farthest
    assert 115 < maps[0, :, -1].mean() < 140  # frame 0 reaches about half way...
    assert maps[1, :, -1].min() > 245  # ...frame 1 all the way


# --- pose --------------------------------------------------------------------------------------


def person(**joints: tuple[float, float]) -> np.ndarray:
    """OpenPose (18, 2) keypoints with only the named joints seen."""
    names = [
        *("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist"),
        *("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle"),
        *("r_eye", "l_eye", "r_ear", "l_ear"),
    ]
    points = np.full((18, 2), np.nan, np.float32)
    for name, xy in joints.items():
        points[names.index(name)] = xy
    return points


def test_openpose_drawing_puts_each_colour_where_openpose_does() -> None:
    # neck above the right shoulder's joint; a right elbow, no wrist
    someone = person(neck=(30, 20), r_shoulder=(30, 60), r_elbow=(70, 60))
    canvas = pose.draw_bodypose(100, 120, [someone])

    assert canvas.shape == (100, 120, 3) and canvas.dtype == np.uint8
    # joints: full colour discs of radius 4 (neck orange, right shoulder amber, elbow yellow)
    assert tuple(canvas[20, 30]) == (255, 85, 0)
    assert tuple(canvas[60, 30]) == (255, 170, 0)
    assert tuple(canvas[60, 70]) == (255, 255, 0)
    assert tuple(canvas[20, 33]) == (255, 85, 0) and not canvas[20, 36].any()
    # limbs at 60%: neck-right shoulder is red, right upper arm (shoulder-elbow) is amber
    assert tuple(canvas[40, 30]) == (153, 0, 0)
    assert tuple(canvas[60, 50]) == (153, 102, 0)
    # limbs are 2 x 4 pixels thick: inside at 3 pixels off the line, outside at 6
    assert tuple(canvas[40, 33]) == (153, 0, 0) and not canvas[40, 36].any()
    # no limb to an unseen joint, nothing elsewhere
    assert not canvas[60, 80:].any() and not canvas[:10].any() and not canvas[90:].any()
    assert {tuple(c) for c in canvas.reshape(-1, 3)} <= {
        (0, 0, 0),
        (255, 85, 0),
        (255, 170, 0),
        (255, 255, 0),
        (153, 0, 0),
        (153, 102, 0),
    }


def test_coco_keypoints_map_to_openpose_with_a_neck_between_the_shoulders() -> None:
    coco = np.arange(34, dtype=np.float32).reshape(17, 2)
    scores = np.full(17, 0.9, np.float32)
    scores[9] = 0.1  # left wrist unsure
    points = pose.openpose_keypoints(coco, scores)

    assert points.shape == (18, 2)
    np.testing.assert_array_equal(points[0], coco[0])  # nose
    np.testing.assert_array_equal(points[1], (coco[5] + coco[6]) / 2)  # neck
    np.testing.assert_array_equal(points[2], coco[6])  # right shoulder
    np.testing.assert_array_equal(points[5], coco[5])  # left shoulder
    np.testing.assert_array_equal(points[14], coco[2])  # right eye
    np.testing.assert_array_equal(points[17], coco[3])  # left ear
    assert np.isnan(points[7]).all()  # left wrist, below the threshold, not drawn

    scores[6] = 0.1  # right shoulder unsure: no neck either
    assert np.isnan(pose.openpose_keypoints(coco, scores)[1]).all()


def test_pose_runs_on_the_estimators_and_draws_a_skeleton_a_frame(hub) -> None:
    hub(DETECTOR)
    hub(VITPOSE)
    frames = noise(5, 72, 57)  # more frames than one detector batch
    skeletons = control.extract("pose", frames, params={}, **CPU)

    assert skeletons.shape == frames.shape and skeletons.dtype == np.uint8
    # the tiny detector sees a person in every frame; its keypoints give OpenPose colours only
    colours = {tuple(c) for c in skeletons.reshape(-1, 3)}
    openpose = set(pose.COLORS) | {tuple(int(v * 0.6) for v in c) for c in pose.COLORS}
    assert colours - {(0, 0, 0)} and colours <= openpose | {(0, 0, 0)}


def test_pose_frames_with_nobody_are_black(hub, monkeypatch) -> None:
    hub(DETECTOR)
    hub(VITPOSE)
    monkeypatch.setattr(
        pose,
        "detect_people",
        lambda estimator, frames: [np.zeros((0, 4), np.float32)] * len(frames),
    )
    skeletons = control.extract("pose", noise(3, 40, 40), params={}, **CPU)
    assert skeletons.shape == (3, 40, 40, 3) and not skeletons.any()


def test_a_second_video_reuses_the_loaded_estimator(hub, monkeypatch) -> None:
    hub(DEPTH)
    control.extract("depth", noise(1, 32, 32), params={}, **CPU)
    loaded = control._loaded
    monkeypatch.setattr("promptreel.control.depth.load", None)  # loading again would fail
    control.extract("depth", noise(2, 40, 40), params={}, **CPU)
    assert control._loaded is loaded


# --- not downloaded ----------------------------------------------------------------------------


def test_a_missing_estimator_is_named_with_the_command_that_fetches_it(
    tmp_path, monkeypatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    assert control.missing_estimators("depth") == [DEPTH]
    assert control.missing_estimators("pose") == [DETECTOR, VITPOSE]
    assert control.missing_estimators("canny") == []

    with pytest.raises(ModelNotDownloaded) as caught:
        control.extract("depth", noise(1, 32, 32), params={}, **CPU)
    message = str(caught.value)
    assert DEPTH in message and "promptreel download" in message and "--control depth" in message
    assert "\n" not in message
    # canny needs no weights: it works with an empty cache
    assert control.extract("canny", noise(1, 32, 32), params=CANNY, **CPU).shape == (1, 32, 32, 3)


def test_a_half_downloaded_estimator_counts_as_missing(tmp_path, monkeypatch) -> None:
    from hfcache import place
    from huggingface_hub import constants
    from tiny import BUILDERS

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    snapshot = place(cache, DEPTH, BUILDERS[DEPTH])
    assert control.missing_estimators("depth") == []
    (snapshot / "model.safetensors").unlink()  # the configs came, the weights did not
    assert control.missing_estimators("depth") == [DEPTH]
