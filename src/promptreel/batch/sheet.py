"""The contact sheet of a batch: one row per video, frames across, each row labelled with its
number and the settings the batch varied (or its prompt, when only prompts differ), and which
of a request's several videos it is."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..video import read_frames
from .runner import SHEET, Outcome

FRAMES_ACROSS = 8
THUMB_HEIGHT = 96
LABEL_WIDTH = 240
GAP = 4


def contact_sheet(output_dir: Path, outcomes: list[Outcome]) -> Path | None:
    """Draw the sheet of the batch's videos (those not made get a line saying why); None when
    the batch made none."""
    if not any(o.status in ("done", "skipped") for o in outcomes):
        return None
    font = ImageFont.load_default()
    rows: list[tuple[str, list[Image.Image]]] = []
    for outcome in outcomes:
        label = _label(outcome)
        if outcome.status in ("done", "skipped"):
            several = len(outcome.paths) > 1
            for number, path in enumerate(outcome.paths, start=1):
                frames, _ = read_frames(path, argument="video")
                picked = np.linspace(0, len(frames) - 1, min(FRAMES_ACROSS, len(frames)))
                thumbs = [_thumb(frames[round(float(i))]) for i in picked]
                rows.append((f"{label}\nvideo {number}" if several else label, thumbs))
        else:
            rows.append((f"{label}\n{outcome.status}: {outcome.reason or ''}"[:200], []))
    width = LABEL_WIDTH + max(sum(t.width + GAP for t in thumbs) for _, thumbs in rows)
    sheet = Image.new("RGB", (width, len(rows) * (THUMB_HEIGHT + GAP) + GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (label, thumbs) in enumerate(rows):
        top = GAP + index * (THUMB_HEIGHT + GAP)
        draw.multiline_text((GAP, top + 2), _wrapped(label), fill="black", font=font)
        left = LABEL_WIDTH
        for thumb in thumbs:
            sheet.paste(thumb, (left, top))
            left += thumb.width + GAP
    path = output_dir / SHEET
    temp = path.with_name(f".{SHEET}.{os.getpid()}.tmp.png")
    sheet.save(temp)
    os.replace(temp, path)
    return path


def _label(outcome: Outcome) -> str:
    job = outcome.job
    varied = ", ".join(f"{k}={v}" for k, v in job.varied.items())
    return f"#{job.number} {job.request.prompt or ''}\n{varied}".strip()


def _thumb(frame: np.ndarray) -> Image.Image:
    image = Image.fromarray(frame)
    width = max(1, round(image.width * THUMB_HEIGHT / image.height))
    return image.resize((width, THUMB_HEIGHT), Image.Resampling.LANCZOS)


def _wrapped(text: str, width: int = 36) -> str:
    lines = []
    for paragraph in text.splitlines():
        while len(paragraph) > width:
            lines.append(paragraph[:width])
            paragraph = paragraph[width:]
        lines.append(paragraph)
    return "\n".join(lines[:6])
