"""The diffusers pipeline families promptreel can drive, keyed by pipeline class name.

Every number here was read from the installed diffusers 0.42.1 source: `check_inputs` (what a
pipeline rejects), `prepare_latents` (how frames map to latent frames, and whether a bad count is
rounded silently) and the `__call__` signature and docstring (the extra settings). The VAE factor
and patch size come from the released models' configs (see cards.py).

TextToVideoSD, VideoToVideoSD, I2VGenXL and TextToVideoZero live in `diffusers.pipelines.deprecated`
in 0.42.1: still exported and working, but no longer tested upstream.
"""

from __future__ import annotations

from promptreel.models.card import Family, Param

# --- settings shared by several families -------------------------------------------------------

# prepare_extra_step_kwargs passes eta only to schedulers whose step() takes it (DDIM-style);
# the DDIM paper's range is [0, 1] (0 = deterministic DDIM, 1 = DDPM-like).
_ETA = Param(
    float, "DDIM eta: 0 = deterministic, 1 = DDPM-like noise; DDIM schedulers only", 0.0, 1.0
)

# A VAE decode batch, in frames: smaller saves memory, larger is more temporally consistent.
_DECODE_CHUNK = Param(int, "frames decoded at a time by the VAE (lower = less memory)", 1, 1024)

# LTX-Video: plain numbers in both LTXPipeline.__call__ and LTXImageToVideoPipeline.__call__.
_LTX_PARAMS = {
    # Used only when the VAE has timestep_conditioning (LTX-Video 0.9.1 and later; the 0.9.0
    # weights in Lightricks/LTX-Video ignore it). 0.9.1 docs use 0.03 / 0.025.
    "decode_timestep": Param(
        float, "timestep the VAE decodes at (VAEs with timestep conditioning only)", 0.0, 1.0
    ),
    "decode_noise_scale": Param(
        float, "noise mixed into the latents at the decode timestep (defaults to it)", 0.0, 1.0
    ),
    # Lin et al. 2023, eq. 16: phi in [0, 1].
    "guidance_rescale": Param(
        float, "rescale CFG output to fight over-exposure (0 = off)", 0.0, 1.0
    ),
    # Prompt tokens fed to T5-XXL (pipeline default 128); T5 v1.1 was trained on 512-token inputs.
    "max_sequence_length": Param(int, "prompt tokens given to the T5 text encoder", 1, 512),
}

# How strongly a ControlNet's residuals steer the UNet (diffusers' default 1.0; the ControlNet
# authors' demos go up to 2).
_CONTROL_SCALE = Param(
    float, "how strongly the control images steer the video (default 1)", 0.0, 5.0
)

# Settings of drawing control images from a source video (`--video` with `--control`), by
# kind; promptreel uses them itself, the pipeline never sees them. Canny's thresholds are on
# OpenCV's gradient magnitude (L1 norm of 3x3 Sobel, at most 2040); ControlNet's own canny
# annotator uses 100 and 200.
CONTROL_PARAMS: dict[str, dict[str, Param]] = {
    "canny": {
        "low_threshold": Param(int, "edges weaker than this are dropped (default 100)", 0, 2040),
        "high_threshold": Param(int, "edges stronger than this always kept (default 200)", 0, 2040),
    },
}
CONTROL_PARAM_DEFAULTS: dict[str, dict[str, int]] = {
    "canny": {"low_threshold": 100, "high_threshold": 200}
}

# The pipelines that make a request's several videos in one call (diffusers'
# `num_videos_per_prompt`) such that video k is the video seed + k - 1 makes alone: each
# video's noise drawn from its own generator of a list, and nothing else random. The others
# run one call a seed: CogVideoX and AnimateDiff set the argument back to 1, Text2Video-Zero
# asserts it is 1, SVD draws its image noise from the first generator only, I2VGen-XL its image
# latents from the global generator, and LTX's image-to-video reads one image a generator.
BATCHES_VIDEOS = frozenset({"LTXPipeline", "WanPipeline"})

FAMILIES: dict[str, Family] = {
    # ModelScope / Zeroscope text-to-video (UNet3DConditionModel).
    "TextToVideoSDPipeline": Family(
        pipeline_class="TextToVideoSDPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        # check_inputs: height and width % 8 (the SD VAE's factor). The UNet3D forwards
        # upsample sizes, so latents need not be multiples of its 2**3 down-sampling.
        size_multiple=8,
        # UNet3D's temporal attention has no positional embedding: any frame count runs.
        params={"eta": _ETA},
    ),
    # Zeroscope XL: re-noises and denoises an input video (the upscaler half of Zeroscope).
    # Its __call__ takes no height, width or num_frames: all three come from the input video,
    # which the video processor resizes down to a multiple of 8 without warning.
    "VideoToVideoSDPipeline": Family(
        pipeline_class="VideoToVideoSDPipeline",
        tasks=("video-to-video",),
        takes_text=True,
        size_multiple=8,
        params={
            "strength": Param(
                float, "how far to re-noise the input video (0 = keep, 1 = ignore it)", 0.0, 1.0
            ),
            "eta": _ETA,
        },
    ),
    "CogVideoXPipeline": Family(
        pipeline_class="CogVideoXPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        # check_inputs only asks for % 8, but the transformer patchifies latents 2x2
        # (patch_size=2 in every CogVideoX config): VAE factor 8 x patch 2. An odd latent side
        # is cropped silently by the patch embedding, and the scheduler step then fails.
        size_multiple=16,
        # latent_frames = (num_frames - 1) // 4 + 1 (temporal VAE factor 4), but the CogVideoX
        # VAE decodes latent frames in pairs, so only 8k+1 comes out exact: 5 frames give 8,
        # 13 give 16 (measured on a tiny model; the model card says 8N+1, N <= 6).
        frame_step=8,
        frame_offset=1,
        params={
            "use_dynamic_cfg": Param(bool, "vary the guidance scale over the steps (cosine)"),
            "eta": _ETA,
            # max_sequence_length is left out on purpose: the 2B model adds positional
            # embeddings sized for exactly 226 text tokens, so any other value breaks it.
        },
    ),
    "CogVideoXImageToVideoPipeline": Family(
        pipeline_class="CogVideoXImageToVideoPipeline",
        tasks=("image-to-video",),
        takes_text=True,
        size_multiple=16,  # as CogVideoXPipeline
        frame_step=8,  # as CogVideoXPipeline: 8k+1
        frame_offset=1,
        params={
            "use_dynamic_cfg": Param(bool, "vary the guidance scale over the steps (cosine)"),
            "eta": _ETA,
        },
    ),
    # SVD conditions on an image only: no prompt, no negative prompt.
    "StableVideoDiffusionPipeline": Family(
        pipeline_class="StableVideoDiffusionPipeline",
        tasks=("image-to-video",),
        takes_text=False,
        size_multiple=8,  # check_inputs: % 8; the spatio-temporal UNet forwards upsample sizes
        params={
            # Micro-conditioning on the amount of motion; the pipeline default is 127.
            # trained on buckets 0..255; a little beyond still moves, far beyond only breaks
            "motion_bucket_id": Param(
                int, "amount of motion to condition on (default 127)", 0, 1023
            ),
            # Noise added to the conditioning image (default 0.02).
            "noise_aug_strength": Param(
                float, "noise added to the input image: more = more motion, less fidelity", 0.0, 1.0
            ),
            "decode_chunk_size": _DECODE_CHUNK,
            # Guidance ramps linearly from min (first frame) to max (last frame); our
            # guidance_scale is the max end (see renames), this is the other end.
            "min_guidance_scale": Param(
                float, "guidance on the first frame (ramps to the max)", 0.0, 50.0
            ),
        },
        # SVD has no single guidance scale: min_guidance_scale..max_guidance_scale per frame.
        # `fps` keeps its name: it is a micro-conditioning input (the UNet sees fps - 1) as well
        # as the rate the frames are meant to be played at.
        renames={"guidance_scale": "max_guidance_scale"},
    ),
    "I2VGenXLPipeline": Family(
        pipeline_class="I2VGenXLPipeline",
        tasks=("image-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8
        params={"decode_chunk_size": _DECODE_CHUNK, "eta": _ETA},
        # target_fps is both a micro-condition and the intended playback rate.
        renames={"fps": "target_fps"},
    ),
    # Stable Diffusion 1.5 + a motion adapter (UNetMotionModel).
    "AnimateDiffPipeline": Family(
        pipeline_class="AnimateDiffPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8
        # The motion modules' sinusoidal position table is motion_max_seq_length long (32 for
        # the v1.5 adapters): a card's max_frames carries that limit.
        params={"decode_chunk_size": _DECODE_CHUNK, "eta": _ETA},
        control_pipeline_class="AnimateDiffControlNetPipeline",
    ),
    # AnimateDiff with a ControlNet on every frame (conditioning_frames, one per frame).
    "AnimateDiffControlNetPipeline": Family(
        pipeline_class="AnimateDiffControlNetPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8, as AnimateDiffPipeline
        params={
            "decode_chunk_size": _DECODE_CHUNK,
            "eta": _ETA,
            "controlnet_conditioning_scale": _CONTROL_SCALE,
        },
        renames={"control_video": "conditioning_frames"},
    ),
    # AnimateDiff restyling a clip: its __call__ takes no num_frames (the input's count is the
    # output's) and re-noises the input's latents by `strength`.
    "AnimateDiffVideoToVideoPipeline": Family(
        pipeline_class="AnimateDiffVideoToVideoPipeline",
        tasks=("video-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8
        params={
            "strength": Param(
                float, "how far to re-noise the input video (0 = keep, 1 = ignore it)", 0.0, 1.0
            ),
            "decode_chunk_size": _DECODE_CHUNK,
            "eta": _ETA,
        },
    ),
    # Zero-shot: any SD 1.5 checkpoint, with cross-frame attention and latent motion warping.
    "TextToVideoZeroPipeline": Family(
        pipeline_class="TextToVideoZeroPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8
        params={
            # latent pixels a frame; beyond a few hundred the warp only samples the border
            "motion_field_strength_x": Param(
                float, "global motion along x (default 12)", -256, 256
            ),
            "motion_field_strength_y": Param(
                float, "global motion along y (default 12)", -256, 256
            ),
            # Both count steps back from the end of the schedule (timesteps[-t - 1]); the
            # pipeline asserts nothing, so they must satisfy t0 < t1 < num_inference_steps
            # (defaults 44 and 47, which need at least 48 steps).
            "t0": Param(int, "step the motion is applied at; t0 < t1 < steps (default 44)", 0, 500),
            "t1": Param(int, "step re-noised from; t0 < t1 < steps (default 47)", 1, 500),
            "eta": _ETA,
        },
        renames={"num_frames": "video_length"},
        increasing=("t0", "t1", "num_inference_steps"),
        control_pipeline_class="StableDiffusionControlNetPipeline",
    ),
    # Text2Video-Zero with a ControlNet, as the diffusers guide runs it: Stable Diffusion's
    # ControlNet pipeline over every frame at once, cross-frame attention on the UNet and the
    # ControlNet, the same initial latents for every frame. No motion warping (t0, t1): the
    # control images carry the motion.
    "StableDiffusionControlNetPipeline": Family(
        pipeline_class="StableDiffusionControlNetPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        size_multiple=8,  # check_inputs: % 8
        params={"controlnet_conditioning_scale": _CONTROL_SCALE, "eta": _ETA},
        renames={"control_video": "image"},
        frames_as_batch=True,
    ),
    # Text2Video-Zero editing a video by instruction: InstructPix2Pix over every frame at once
    # with cross-frame attention. Its __call__ takes no size: the frames' own is the output's.
    "StableDiffusionInstructPix2PixPipeline": Family(
        pipeline_class="StableDiffusionInstructPix2PixPipeline",
        tasks=("video-to-video",),
        takes_text=True,
        size_multiple=8,  # the VAE's factor: the frames are encoded as they are
        params={
            # Below 1 the pipeline switches classifier-free guidance off altogether, the text's
            # with the image's (do_classifier_free_guidance), so 1 is the floor.
            "image_guidance_scale": Param(
                float, "how closely to keep to the input frames (default 1.5)", 1.0, 50.0
            ),
            "eta": _ETA,
        },
        renames={"video": "image"},
        frames_as_batch=True,
    ),
    "LTXPipeline": Family(
        pipeline_class="LTXPipeline",
        tasks=("text-to-video", "image-to-video"),
        takes_text=True,
        # check_inputs: % 32 (raises). VAE spatial factor 32 x transformer patch_size 1.
        size_multiple=32,
        # latent_num_frames = (num_frames - 1) // 8 + 1: the temporal VAE factor is 8 and a bad
        # count is floored silently.
        frame_step=8,
        frame_offset=1,
        params=dict(_LTX_PARAMS),
        # frame_rate also sets the RoPE time scale, so it should match the playback rate.
        renames={"fps": "frame_rate"},
        image_pipeline_class="LTXImageToVideoPipeline",
    ),
    "LTXImageToVideoPipeline": Family(
        pipeline_class="LTXImageToVideoPipeline",
        tasks=("image-to-video",),
        takes_text=True,
        size_multiple=32,  # as LTXPipeline
        frame_step=8,
        frame_offset=1,
        params=dict(_LTX_PARAMS),
        renames={"fps": "frame_rate"},
    ),
    "WanPipeline": Family(
        pipeline_class="WanPipeline",
        tasks=("text-to-video",),
        takes_text=True,
        # check_inputs: % 16 (raises). VAE spatial factor 8 x transformer patch (1, 2, 2).
        size_multiple=16,
        # Temporal VAE factor 4: a count that is not 4k + 1 is floored to one, with a warning.
        frame_step=4,
        frame_offset=1,
        params={
            # The transformer was trained with prompts padded to 512 tokens (Wan text_len).
            "max_sequence_length": Param(int, "prompt tokens given to the UMT5 encoder", 1, 512),
            # guidance_scale_2 is left out: it is for Wan 2.2's two-expert models, and the
            # pipeline raises if it is set while boundary_ratio is None (as for Wan 2.1).
        },
    ),
}
