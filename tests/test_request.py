"""Settling a request against a card: what unset values become."""

from __future__ import annotations

from promptreel.models.resolve import find_card
from promptreel.request import InputVideo, make_request, settle


def test_a_video_to_video_output_follows_its_input() -> None:
    card = find_card("zeroscope-xl")
    request = make_request(prompt="a cat", model="zeroscope-xl", video="in.mp4")
    portrait = settle(request, card, video=InputVideo(frames=10, fps=24.0, height=64, width=32))
    assert (portrait.height, portrait.width) == (card.width, card.height)  # stays portrait
    assert portrait.fps == 24.0 and portrait.num_frames == 10
    landscape = settle(request, card, video=InputVideo(frames=90, fps=30.0, height=32, width=64))
    assert (landscape.height, landscape.width) == (card.height, card.width)
    assert landscape.num_frames == card.num_frames  # no more than the card makes by default


def test_unset_values_take_the_card_and_set_ones_are_kept() -> None:
    card = find_card("cogvideox-2b")
    settled = settle(make_request(prompt="a cat", model="cogvideox-2b", seed=5), card)
    assert (settled.num_frames, settled.height, settled.width) == (49, 480, 720)
    assert settled.seed == 5 and settled.scheduler == "model"  # the one the model ships with
    assert settled.negative_prompt == ""  # none, said explicitly
    asked = settle(make_request(prompt="a cat", model="cogvideox-2b", num_frames=9), card)
    assert asked.num_frames == 9
    assert settle(make_request(prompt="a cat", model="cogvideox-2b"), card).seed >= 0
