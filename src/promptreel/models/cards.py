"""The models promptreel knows by name.

Where the numbers come from:
- Defaults (size, frames, fps, steps, guidance, dtype, variant, scheduler) follow the model card or
  the diffusers example for that pipeline (the EXAMPLE_DOC_STRING in the installed 0.42.1 source);
  each card says which.
- Parameter counts were computed, not copied: each component was built from its released config
  on the meta device and its unique parameters summed. Every count was checked against the size
  of the repo's weight files (bytes / 2 or 4 per parameter) where that size is published, and
  matched. Buffers are not counted (e.g. CogVideoX-5B-I2V's learned positional table, ~55M values
  stored as a buffer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from promptreel.models.card import ModelCard
from promptreel.models.families import FAMILIES

# --- parameter counts of shared components ------------------------------------------------------

# AutoencoderKL of Stable Diffusion (128-256-512-512, 2 layers/block): SD 1.5, ModelScope,
# Zeroscope and I2VGen-XL all ship this config.
_SD_VAE = 83_653_863
# CLIP ViT-L/14 text tower (SD 1.5).
_CLIP_L_TEXT = 123_060_480
# OpenCLIP ViT-H/14 text tower cut to 23 layers (penultimate output, as SD 2): ModelScope's
# text_encoder/config.json has num_hidden_layers=23, projection_dim=512.
_CLIP_H_TEXT_23 = 340_387_840
# OpenCLIP ViT-H/14 vision tower with projection (32 layers, width 1280, projection 1024):
# SVD's and I2VGen-XL's image_encoder (model.safetensors 2.53 GB fp32).
_CLIP_H_VISION = 632_076_800
# T5-v1.1-XXL encoder (24 layers, d_model 4096, d_ff 10240): CogVideoX and LTX-Video
# (CogVideoX text_encoder shards 4.99 + 4.53 GB in bf16).
_T5_XXL_ENCODER = 4_762_310_656
# UNet2DConditionModel of SD 1.5.
_SD15_UNET = 859_520_964

# ModelScope's UNet3DConditionModel (320-640-1280-1280, head dim 64, cross-attn 1024);
# unet/diffusion_pytorch_model.safetensors is 5.65 GB in fp32. Zeroscope fine-tunes the same
# network (its fp16 .bin is 2.82 GB).
_MODELSCOPE_COMPONENTS = {
    "unet": 1_411_233_860,
    "text_encoder": _CLIP_H_TEXT_23,
    "vae": _SD_VAE,
}

# SVD and SVD-XT share one architecture: UNetSpatioTemporalConditionModel (6.1 GB fp32) and the
# AutoencoderKLTemporalDecoder (391 MB fp32).
_SVD_COMPONENTS = {
    "unet": 1_524_623_082,
    "image_encoder": _CLIP_H_VISION,
    "vae": 97_742_847,
}

# AutoencoderKLCogVideoX (128-256-256-512, 3 layers/block, 16 latent channels): the same
# network in all three CogVideoX 1.0 repos.
_COGVIDEOX_VAE = 215_583_907

# SD 1.5 base for Text2Video-Zero. The diffusers docs load it without a variant; the repo
# carries fp32 files and fp16-suffixed ones.
_SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# AnimateDiff's base in the diffusers guide ("Text or image-to-video"): a community SD 1.5
# fine-tune, whose photographic style suits the motion adapter better than the base model.
_ANIMATEDIFF_BASE = "emilianJR/epiCRealism"
_MOTION_ADAPTER = {"motion_adapter": ("guoyww/animatediff-motion-adapter-v1-5-2", "MotionAdapter")}
# The AnimateDiff guide's DDIM: its settings on top of the base's own schedule.
_ANIMATEDIFF_DDIM = {
    "clip_sample": False,
    "timestep_spacing": "linspace",
    "beta_schedule": "linear",
    "steps_offset": 1,
}
_SD15_COMPONENTS = {"unet": _SD15_UNET, "text_encoder": _CLIP_L_TEXT, "vae": _SD_VAE}
_MOTION_ADAPTER_PARAMETERS = 453_209_280  # MotionAdapter v1-5-2, with the mid-block module
# SD 1.5's safety checker: the Stable Diffusion pipelines (Text2Video-Zero's, ControlNet's,
# InstructPix2Pix's) load and run it; AnimateDiff's do not take it.
_SAFETY_CHECKER = 303_981_588

# The ControlNet for each `--control` kind: lllyasviel's v1.1 models for SD 1.5 rather than
# the v1.0 ones (`sd-controlnet-*`) the older guides load. v1.1 was trained longer on cleaned
# data (openpose with hands and faces, depth on MiDaS, LeReS and ZoE maps alike, so any depth
# estimator's output works), and each repo has a safetensors file diffusers loads directly.
CONTROLNETS: dict[str, str] = {
    "pose": "lllyasviel/control_v11p_sd15_openpose",
    "canny": "lllyasviel/control_v11p_sd15_canny",
    "depth": "lllyasviel/control_v11f1p_sd15_depth",
}
CONTROLNET_PARAMETERS = 361_278_852  # ControlNetModel for SD 1.5 (1.45 GB in fp32)
# The models that draw control images from a video (`--video` with `--control`), run through
# transformers from safetensors: Depth Anything V2 Small (25M parameters, Apache-2.0) for depth;
# for pose, people found by RT-DETR, then their COCO keypoints by ViTPose (both Apache-2.0),
# drawn as OpenPose skeletons. OpenPose's own weights exist only as pickles and need a network
# and part-association code of their own; these two are plain transformers classes. Canny is
# OpenCV's and needs no weights.
ESTIMATORS: dict[str, tuple[str, ...]] = {
    "pose": ("PekingU/rtdetr_r50vd_coco_o365", "usyd-community/vitpose-base-simple"),
    "canny": (),
    "depth": ("depth-anything/Depth-Anything-V2-Small-hf",),
}

# promptreel's own model: trained from scratch on the CPU (configs/shapes.toml for the VAE,
# then configs/shapes-centred.toml; docs/training.md) and shipped inside the package, so it
# works offline from the first run.
SHAPES_FOLDER = Path(__file__).resolve().parent.parent / "weights" / "shapes"
_SHAPES_COMPONENTS = {"unet": 1_275_076, "vae": 1_250_759, "text_encoder": 145_536}

_ANIMATEDIFF = ModelCard(
    name="animatediff",
    family=FAMILIES["AnimateDiffPipeline"],
    repo_id=_ANIMATEDIFF_BASE,
    # diffusers AnimateDiff guide: epiCRealism, 16 frames, guidance 7.5, 25 steps, DDIM
    # with its settings; 512x512 is SD 1.5's size and 8 fps the pipeline docstring's rate.
    width=512,
    height=512,
    num_frames=16,
    fps=8,
    num_inference_steps=25,
    guidance_scale=7.5,
    dtype="float16",
    # an SD 1.5 fine-tune under SD's licence; the motion adapter itself is Apache-2.0
    licence="creativeml-openrail-m",
    variant=None,
    scheduler="ddim",
    scheduler_overrides=dict(_ANIMATEDIFF_DDIM),
    # motion_max_seq_length=32 in the adapter's config: the sinusoidal position table of
    # the motion modules has 32 rows, so more frames cannot run.
    max_frames=32,
    max_pixels=768 * 512,  # SD 1.5 was trained at 512^2; 768x512 still composes well
    components={**_SD15_COMPONENTS, "motion_adapter": _MOTION_ADAPTER_PARAMETERS},
    extra_repos=dict(_MOTION_ADAPTER),
    takes_base=True,
    description="AnimateDiff v1.5-2 motion adapter on epiCRealism (SD 1.5), 16 frames at 512px",
)

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        name="shapes",
        family=FAMILIES["TextToVideoSDPipeline"],
        repo_id="promptreel/shapes",
        # the training world: 64x64, 16 frames at 8 fps (2 s)
        width=64,
        height=64,
        num_frames=16,
        fps=8,
        num_inference_steps=10,  # as faithful as 20 at half the time (docs/benchmarks.md)
        # 4, not 7.5: stronger guidance pushes yellow past itself to white (docs/benchmarks.md)
        guidance_scale=4.0,
        dtype="float32",  # 11 MB: half precision would save nothing worth its risk
        licence="apache-2.0",
        # trained at 64x64 only; the frames are free (a temporal model), within reason
        fixed_size=True,
        max_frames=64,
        max_pixels=64 * 64,
        components=dict(_SHAPES_COMPONENTS),
        description="promptreel's own, trained on a CPU: one coloured circle, square or "
        "triangle moving on black, 64x64, 2 s",
        local_path=str(SHAPES_FOLDER),
        # the day the shipped weights were trained (.2: the day's second set): a new set, a new name
        revision="2026-12-01.2",
    ),
    ModelCard(
        name="modelscope",
        family=FAMILIES["TextToVideoSDPipeline"],
        repo_id="damo-vilab/text-to-video-ms-1.7b",
        # 256x256 is the UNet's sample_size (32) x VAE factor 8, the pipeline's default size;
        # 16 frames and 8 fps are the pipeline docstring's "16 frames at 8 fps = 2 seconds".
        width=256,
        height=256,
        num_frames=16,
        fps=8,
        # The model card and diffusers docs run DPMSolverMultistep for 25 steps; 9.0 is the
        # pipeline's default guidance.
        num_inference_steps=25,
        guidance_scale=9.0,
        dtype="float16",
        licence="cc-by-nc-4.0",
        variant="fp16",  # docs load variant="fp16"; the repo has *.fp16.safetensors
        scheduler="dpm++",
        # The model card's "long video" example renders 200 frames (25 s at 8 fps) on < 16 GB;
        # the UNet3D's temporal attention has no positional limit.
        max_frames=200,
        # Trained at 256x256; Zeroscope fine-tuned the same network to 576x320, which is as far
        # as these weights sensibly stretch.
        max_pixels=576 * 320,
        components=dict(_MODELSCOPE_COMPONENTS),
        description="ModelScope text-to-video 1.7B (UNet3D on SD latents), 256x256, 2 s clips",
    ),
    ModelCard(
        name="zeroscope",
        family=FAMILIES["TextToVideoSDPipeline"],
        repo_id="cerspense/zeroscope_v2_576w",
        # Model card: trained "at 24 frames, 576x320"; diffusers example: 40 steps with
        # DPMSolverMultistep, height=320, width=576, num_frames=24.
        width=576,
        height=320,
        num_frames=24,
        fps=8,  # not stated by the card; ModelScope's 8 fps, the rate it was fine-tuned from
        num_inference_steps=40,
        guidance_scale=9.0,  # pipeline default; the example leaves it unset
        dtype="float16",
        licence="cc-by-nc-4.0",
        variant=None,  # the repo ships only unsuffixed (fp16) .bin weights, no safetensors
        scheduler="dpm++",
        # No architectural frame limit (see modelscope); the card quotes 7.9 GB for 30 frames,
        # and 64 frames at 576x320 is about the pixel-frame budget of ModelScope's 200 at 256^2.
        max_frames=64,
        # Zeroscope XL runs the same network at 1024x576.
        max_pixels=1024 * 576,
        components=dict(_MODELSCOPE_COMPONENTS),
        description="Zeroscope v2 576w: watermark-free ModelScope fine-tune, 16:9 at 576x320",
    ),
    ModelCard(
        name="zeroscope-xl",
        family=FAMILIES["VideoToVideoSDPipeline"],
        repo_id="cerspense/zeroscope_v2_XL",
        # Model card: trained at 1024x576 and 24 frames, "designed for upscaling content made
        # with zeroscope_v2_576w"; the diffusers example resizes 576w frames to 1024x576 and
        # denoises with strength=0.6, default 50 steps and guidance 15.0.
        width=1024,
        height=576,
        num_frames=24,
        fps=8,  # as zeroscope, whose output it upscales
        num_inference_steps=50,
        guidance_scale=15.0,
        dtype="float16",
        licence="cc-by-nc-4.0",
        variant=None,  # unsuffixed .bin weights only
        scheduler="dpm++",
        # The card quotes 15.3 GB of VRAM for 30 frames at 1024x576.
        max_frames=32,
        param_defaults={"strength": 0.6},  # the example's, and the pipeline's own
        max_pixels=1024 * 576,
        components=dict(_MODELSCOPE_COMPONENTS),
        description="Zeroscope v2 XL: video-to-video upscaler of zeroscope output to 1024x576",
    ),
    ModelCard(
        name="cogvideox-2b",
        family=FAMILIES["CogVideoXPipeline"],
        repo_id="THUDM/CogVideoX-2b",
        # Model card: 6 s at 8 fps (49 frames), 720x480; diffusers example: guidance 6, 50 steps.
        width=720,
        height=480,
        num_frames=49,
        fps=8,
        num_inference_steps=50,
        guidance_scale=6.0,
        dtype="float16",  # the card recommends FP16 for the 2B, BF16 for the 5B
        licence="apache-2.0",
        variant=None,  # unsuffixed safetensors
        # CogVideoX 1.0 was trained on 49 frames at 720x480 only.
        max_frames=49,
        max_pixels=720 * 480,
        components={
            # num_attention_heads=30, head dim 64, 30 layers, sinusoidal positions.
            "transformer": 1_693_783_872,
            "text_encoder": _T5_XXL_ENCODER,
            "vae": _COGVIDEOX_VAE,
        },
        description="CogVideoX 2B: expert-transformer text-to-video, 6 s at 720x480",
    ),
    ModelCard(
        name="cogvideox-5b",
        family=FAMILIES["CogVideoXPipeline"],
        repo_id="THUDM/CogVideoX-5b",
        width=720,
        height=480,
        num_frames=49,
        fps=8,
        num_inference_steps=50,
        guidance_scale=6.0,
        dtype="bfloat16",
        licence="CogVideoX License",  # HF tag "other": the repo's LICENSE, not Apache
        variant=None,
        max_frames=49,
        max_pixels=720 * 480,
        components={
            # num_attention_heads=48, head dim 64, 42 layers, 3D RoPE.
            "transformer": 5_570_283_072,
            "text_encoder": _T5_XXL_ENCODER,
            "vae": _COGVIDEOX_VAE,
        },
        description="CogVideoX 5B: larger CogVideoX with 3D RoPE, 6 s at 720x480",
    ),
    ModelCard(
        name="cogvideox-5b-i2v",
        family=FAMILIES["CogVideoXImageToVideoPipeline"],
        repo_id="THUDM/CogVideoX-5b-I2V",
        # diffusers example: bfloat16, use_dynamic_cfg=True, pipeline defaults otherwise.
        width=720,
        height=480,
        num_frames=49,
        fps=8,
        num_inference_steps=50,
        guidance_scale=6.0,
        dtype="bfloat16",
        licence="CogVideoX License",
        variant=None,
        max_frames=49,
        # Learned positional embeddings: CogVideoXPatchEmbed raises for any size but 720x480
        # ("only the case with 'THUDM/CogVideoX-5b-I2V'"), so this is the only size, not a cap.
        max_pixels=720 * 480,
        fixed_size=True,  # its learned positional table fits 720x480 only (embeddings.py)
        param_defaults={"use_dynamic_cfg": True},
        components={
            # As the 5B, with in_channels=32 (image latents concatenated).
            "transformer": 5_570_479_680,
            "text_encoder": _T5_XXL_ENCODER,
            "vae": _COGVIDEOX_VAE,
        },
        description="CogVideoX 5B image-to-video: animates a first frame, 6 s at 720x480",
    ),
    ModelCard(
        name="svd",
        family=FAMILIES["StableVideoDiffusionPipeline"],
        repo_id="stabilityai/stable-video-diffusion-img2vid",
        # Model card: 14 frames at 576x1024. Pipeline defaults: 1024x576, 25 steps, fps 7
        # (the UNet is conditioned on fps - 1), max_guidance_scale 3.0.
        width=1024,
        height=576,
        num_frames=14,
        fps=7,
        num_inference_steps=25,
        guidance_scale=3.0,  # max_guidance_scale, see the family's renames
        dtype="float16",
        licence="stable-video-diffusion-community",  # HF tag "other"
        variant="fp16",  # docs load variant="fp16"; the repo has *.fp16.safetensors
        # The temporal layers take any count, but this checkpoint was trained on 14 frames;
        # svd-xt is the 25-frame fine-tune.
        max_frames=14,
        # decoding all frames at once is the classic SVD out-of-memory; the docs use 8
        param_defaults={"decode_chunk_size": 8},
        max_pixels=1024 * 576,
        components=dict(_SVD_COMPONENTS),
        description="Stable Video Diffusion: image-to-video, 14 frames at 1024x576",
    ),
    ModelCard(
        name="svd-xt",
        family=FAMILIES["StableVideoDiffusionPipeline"],
        repo_id="stabilityai/stable-video-diffusion-img2vid-xt",
        # diffusers example: float16, variant fp16, num_frames=25, decode_chunk_size=8, fps 7.
        width=1024,
        height=576,
        num_frames=25,
        fps=7,
        num_inference_steps=25,
        guidance_scale=3.0,
        dtype="float16",
        licence="stable-video-diffusion-community",
        variant="fp16",
        max_frames=25,  # fine-tuned to 25 frames
        param_defaults={"decode_chunk_size": 8},
        max_pixels=1024 * 576,
        components=dict(_SVD_COMPONENTS),
        description="Stable Video Diffusion XT: image-to-video, 25 frames at 1024x576",
    ),
    ModelCard(
        name="i2vgen-xl",
        family=FAMILIES["I2VGenXLPipeline"],
        repo_id="ali-vilab/i2vgen-xl",
        # VGen's i2vgen_xl_train.yaml: resolution [1280, 704]; i2vgen_xl_infer.yaml:
        # max_frames 16, target_fps 16, guide_scale 9.0. diffusers example: 50 steps, 9.0.
        width=1280,
        height=704,
        num_frames=16,
        fps=16,  # target_fps, a conditioning input
        num_inference_steps=50,
        guidance_scale=9.0,
        dtype="float16",
        licence="mit",
        variant="fp16",  # docs load variant="fp16"; the repo has *.fp16.safetensors
        # Trained on clips of 16 and 32 frames (frame_lens in i2vgen_xl_train.yaml).
        max_frames=32,
        # the diffusers example's negative prompt
        negative_prompt=(
            "Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, "
            "disfigured, disconnected limbs, Ugly faces, incomplete arms"
        ),
        max_pixels=1280 * 720,
        components={
            # I2VGenXLUNet (5.68 GB fp32); the text tower keeps all 24 ViT-H layers and the
            # pipeline skips the last (clip_skip=1).
            "unet": 1_420_469_224,
            "text_encoder": 352_984_064,
            "image_encoder": _CLIP_H_VISION,
            "vae": _SD_VAE,
        },
        description="I2VGen-XL: image-and-text-to-video, 16 frames at 1280x704",
    ),
    _ANIMATEDIFF,
    # the same base, adapter and sampler, restyling a clip instead
    dataclasses.replace(
        _ANIMATEDIFF,
        name="animatediff-v2v",
        family=FAMILIES["AnimateDiffVideoToVideoPipeline"],
        param_defaults={"strength": 0.8},  # the pipeline's own
        description="AnimateDiff video-to-video: restyles a clip with a prompt (SD 1.5 base)",
    ),
    ModelCard(
        name="text2video-zero",
        family=FAMILIES["TextToVideoZeroPipeline"],
        repo_id=_SD15_REPO,
        # diffusers example: pipeline defaults (8 frames, 50 steps, guidance 7.5) saved at 4 fps.
        # The original Text2Video-Zero code swaps in DDIMScheduler.from_config: the pipeline
        # runs the scheduler over three slices of the schedule, which multistep PNDM (the
        # repo's own) does not expect.
        width=512,
        height=512,
        num_frames=8,
        fps=4,
        num_inference_steps=50,  # must stay above t1 (47 by default)
        guidance_scale=7.5,
        dtype="float16",
        licence="creativeml-openrail-m",
        variant=None,
        scheduler="ddim",
        # Every frame attends to the first one: no frame limit but memory, which grows linearly.
        max_frames=64,
        max_pixels=768 * 512,
        param_defaults={"t0": 44, "t1": 47},  # the pipeline's own, made explicit for the check
        components={**_SD15_COMPONENTS, "safety_checker": _SAFETY_CHECKER},
        takes_base=True,
        description="Text2Video-Zero: zero-shot video from Stable Diffusion 1.5, no video training",
    ),
    ModelCard(
        name="pix2pix-video",
        family=FAMILIES["StableDiffusionInstructPix2PixPipeline"],
        repo_id="timbrooks/instruct-pix2pix",
        # diffusers guide (Text2Video-Zero, video editing): the pipeline's defaults, 100 steps,
        # guidance 7.5, image guidance 1.5; 8 frames at 4 fps as the guide's other examples.
        # The input's size decides the output's: 512x512 is only the default for resizing.
        width=512,
        height=512,
        num_frames=8,
        fps=4,
        num_inference_steps=100,
        guidance_scale=7.5,
        dtype="float16",
        licence="mit",
        variant=None,
        # Every frame attends to the first: memory grows linearly with the frames, as
        # text2video-zero.
        max_frames=64,
        max_pixels=768 * 512,
        param_defaults={"image_guidance_scale": 1.5},
        components={
            # SD 1.5's UNet with 8 input channels (the input frame's latents concatenated)
            "unet": _SD15_UNET + 4 * 320 * 3 * 3,
            "text_encoder": _CLIP_L_TEXT,
            "vae": _SD_VAE,
            "safety_checker": _SAFETY_CHECKER,
        },
        description="Text2Video-Zero + InstructPix2Pix: edits a video by instruction",
    ),
    ModelCard(
        name="ltx-video",
        family=FAMILIES["LTXPipeline"],
        repo_id="Lightricks/LTX-Video",
        # diffusers example: bfloat16, 704x480, 161 frames, 50 steps, exported at 24 fps (the
        # model card: "24 FPS videos at a 768x512 resolution"); guidance 3.0 is the default.
        width=704,
        height=480,
        num_frames=161,
        fps=24,  # frame_rate, which also scales the RoPE time axis (pipeline default 25)
        num_inference_steps=50,
        guidance_scale=3.0,
        dtype="bfloat16",
        # HF tag "other": the 0.9 weights' License.txt is an OpenRAIL-M variant.
        licence="openrail-m",
        variant=None,  # sharded, unsuffixed safetensors
        # Model card: works best under 720x1280 and below 257 frames.
        max_frames=257,
        max_pixels=1280 * 720,
        # the diffusers example's negative prompt
        negative_prompt="worst quality, inconsistent motion, blurry, jittery, distorted",
        components={
            # The repo's diffusers folders hold the 0.9.0 model: 28 layers, 32 heads of 64
            # (4.94 + 2.75 GB fp32), and a VAE without timestep conditioning (1.68 GB fp32).
            "transformer": 1_923_385_472,
            "text_encoder": _T5_XXL_ENCODER,
            "vae": 419_193_649,
        },
        description="LTX-Video 0.9 (2B DiT): fast text- or image-to-video at 24 fps",
    ),
    ModelCard(
        name="wan2.1-t2v-1.3b",
        family=FAMILIES["WanPipeline"],
        repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        # 832x480 and 81 frames are the pipeline defaults (the 1.3B's 480P size); diffusers
        # example: 81 frames, guidance 5.0, exported at 16 fps, 50 steps by default. The repo's
        # UniPC scheduler already has the 480P flow_shift of 3.0.
        width=832,
        height=480,
        num_frames=81,
        fps=16,
        num_inference_steps=50,
        guidance_scale=5.0,
        dtype="bfloat16",  # the docs keep the VAE in float32 for decoding quality
        licence="apache-2.0",
        variant=None,
        # Trained on 81-frame (5 s) clips; the model card notes 720P works on the 1.3B but is
        # "less stable" than 480P.
        max_frames=81,
        max_pixels=1280 * 720,
        # the diffusers example's negative prompt (the English rendering of Wan's own)
        negative_prompt="Bright tones, overexposed, static, blurred details, subtitles, style, "
        "works, paintings, images, static, overall gray, worst quality, low quality, JPEG "
        "compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn "
        "faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
        "background, three legs, many people in the background, walking backwards",
        components={
            # dim 1536, ffn 8960, 12 heads, 30 layers (5.68 GB fp32).
            "transformer": 1_418_996_800,
            # UMT5-XXL encoder, vocabulary 256,384 (22.7 GB fp32).
            "text_encoder": 5_680_910_336,
            # AutoencoderKLWan, base_dim 96, z_dim 16 (508 MB fp32).
            "vae": 126_892_531,
        },
        description="Wan 2.1 T2V 1.3B: small flow-matching DiT, 5 s at 832x480",
    ),
)
