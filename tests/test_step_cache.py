"""`--cache fast|max`: DeepCache on the UNets, FirstBlockCache on the transformers.

A reused step must give what the full one would have given on the same input (the wiring), the
shapes model must still draw what the prompt says, the record must say what was reused, and the
kept-loaded pipeline must be left as it was for the next request.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_generate_models import _arguments, _prompt
from test_generate_models import inputs as inputs  # a fixture

import promptreel
import promptreel.generation as generation
from promptreel.eval.fidelity import detect
from promptreel.models import step_cache
from promptreel.models.deep_cache import deep_cache
from promptreel.models.resolve import CARDS_BY_NAME
from promptreel.request import make_request

# one card per kind of UNet: UNet3D, SVD's, I2VGen-XL's, AnimateDiff's motion UNet, SD 1.5's 2D
UNET_CARDS = ("modelscope", "svd", "i2vgen-xl", "animatediff", "text2video-zero")
TRANSFORMER_CARDS = ("cogvideox-2b", "ltx-video", "wan2.1-t2v-1.3b")


def _spy_on_pipelines(monkeypatch: pytest.MonkeyPatch) -> list:
    """The pipelines the engine runs, as it hands them to the step cache."""
    pipes = []
    real = generation.step_cache

    def spy(pipe, level, steps):
        pipes.append(pipe)
        return real(pipe, level, steps)

    monkeypatch.setattr(generation, "step_cache", spy)
    return pipes


@pytest.mark.parametrize("name", UNET_CARDS)
def test_a_reused_unet_call_gives_what_the_full_one_gave(
    name, hub, workdir, inputs, monkeypatch
) -> None:
    card = CARDS_BY_NAME[name]
    hub(name)
    pipes = _spy_on_pipelines(monkeypatch)
    arguments = {**_arguments(card, inputs), "seed": 3}
    promptreel.generate(_prompt(card), model=name, history=False, **arguments)
    unet = pipes[0].unet
    # the UNet's first call as the pipeline makes it: the real arguments of this family
    seen = []
    hook = unet.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args, kwargs)), with_kwargs=True
    )
    promptreel.generate(_prompt(card), model=name, history=False, **arguments)
    hook.remove()
    args, kwargs = seen[0]
    deep_runs = []
    unet.mid_block.resnets[0].register_forward_pre_hook(lambda *_: deep_runs.append(1))

    with torch.no_grad():
        expected = unet(*args, **kwargs)[0]
        with deep_cache(unet, frozenset({0})) as cache:
            full = unet(*args, **kwargs)[0]
            runs = len(deep_runs)
            reused = unet(*args, **kwargs)[0]
        assert (cache.full, cache.reused) == (1, 1)
        assert len(deep_runs) == runs, "the reused call ran the deep blocks"
        assert torch.equal(full, expected)
        torch.testing.assert_close(reused, expected, rtol=1e-5, atol=1e-5)
        # removed: the next call is a plain one again
        assert torch.equal(unet(*args, **kwargs)[0], expected)
        assert len(deep_runs) == runs + 1


def test_fast_on_shapes_draws_the_prompt_and_says_what_it_reused(monkeypatch) -> None:
    pipes = _spy_on_pipelines(monkeypatch)
    for prompt, seed in (("a red circle moving right", 3), ("a blue square moving up", 4)):
        off = promptreel.generate(prompt, seed=seed, history=False)
        fast = promptreel.generate(prompt, seed=seed, history=False, cache="fast")
        again = promptreel.generate(prompt, seed=seed, history=False, cache="fast")
        colour, shape, _, direction = prompt.split()[1:]
        expected = {"colour": colour, "shape": shape, "direction": direction}
        assert detect(fast.frames).attributes() == expected
        assert np.array_equal(fast.frames, again.frames)  # the same seed, the same frames
        assert not np.array_equal(fast.frames, off.frames)  # it did reuse
        assert fast.record["cache"] == {
            "level": "fast",
            "method": "DeepCache",
            "full_steps": [0, 1, 4],
            "unet_calls": 10,
            "reused_calls": 7,
        }
        assert fast.record["parameters"]["cache"] == "fast"
        assert off.record["cache"] == {"level": "off"}
        # the loaded pipeline is left as it was
        after = promptreel.generate(prompt, seed=seed, history=False)
        assert np.array_equal(after.frames, off.frames)
    assert all(pipe is pipes[0] for pipe in pipes)  # all on the one kept loaded


def test_max_reuses_more_than_fast() -> None:
    record = promptreel.generate("a red circle", seed=1, history=False, cache="max").record
    assert record["cache"]["full_steps"] == [0, 2] and record["cache"]["reused_calls"] == 8


@pytest.mark.parametrize(
    ("steps", "share", "full"),
    [(10, 0.3, [0, 1, 4]), (10, 0.2, [0, 2]), (20, 0.3, [0, 1, 2, 5, 9, 14]), (1, 0.3, [0])],
)
def test_full_steps_are_dense_at_the_start(steps, share, full) -> None:
    assert step_cache.full_steps(steps, share) == full


@pytest.mark.parametrize("name", TRANSFORMER_CARDS)
def test_first_block_cache_on_a_transformer(name, hub, monkeypatch) -> None:
    """At threshold 0 nothing is close enough to reuse: the very frames of no cache, through
    the hooks. At an endless threshold every call after the first of each guidance copy reuses
    all blocks but the first."""
    card = CARDS_BY_NAME[name]
    hub(name)
    pipes = _spy_on_pipelines(monkeypatch)
    arguments = {**_arguments(card, {}), "num_inference_steps": 3, "seed": 5}
    off = promptreel.generate(_prompt(card), model=name, history=False, **arguments)
    transformer = pipes[0].transformer
    blocks = transformer.config.num_layers
    calls = []
    transformer.register_forward_pre_hook(lambda *_: calls.append(1))

    monkeypatch.setitem(step_cache.THRESHOLD, "fast", 0.0)
    exact = promptreel.generate(_prompt(card), model=name, history=False, cache="fast", **arguments)
    assert np.array_equal(exact.frames, off.frames)
    assert exact.record["cache"] == {
        "level": "fast",
        "method": "FirstBlockCache",
        "threshold": 0.0,
        "block_runs": len(calls) * blocks,
        "blocks_reused": 0,
    }

    monkeypatch.setitem(step_cache.THRESHOLD, "fast", 1e9)
    calls.clear()
    eager = promptreel.generate(_prompt(card), model=name, history=False, cache="fast", **arguments)
    copies = 2 if name.startswith("wan") else 1  # Wan calls the guidance copies apart
    record = eager.record["cache"]
    assert record["block_runs"] == len(calls) * blocks
    assert record["blocks_reused"] == (len(calls) - copies) * (blocks - 1)
    assert not np.array_equal(eager.frames, off.frames)

    # the hooks come off with the request
    after = promptreel.generate(_prompt(card), model=name, history=False, **arguments)
    assert np.array_equal(after.frames, off.frames)


def test_a_one_block_transformer_runs_without_the_cache_and_says_so(hub, monkeypatch) -> None:
    hub("wan2.1-t2v-1.3b")
    pipes = _spy_on_pipelines(monkeypatch)
    card = CARDS_BY_NAME["wan2.1-t2v-1.3b"]
    arguments = {**_arguments(card, {}), "num_inference_steps": 2, "seed": 5}
    promptreel.generate(_prompt(card), model=card.name, history=False, **arguments)
    del pipes[0].transformer.blocks[1:]  # a model of one block
    try:
        off = promptreel.generate(_prompt(card), model=card.name, history=False, **arguments)
        fast = promptreel.generate(
            _prompt(card), model=card.name, history=False, cache="fast", **arguments
        )
    finally:
        promptreel.unload()  # the next test must not get this pipeline
    assert fast.record["cache"] == {
        "level": "fast",
        "method": None,
        "why": "FirstBlockCache needs two transformer blocks or more",
    }
    assert np.array_equal(fast.frames, off.frames)


def test_cache_on_a_compiled_denoiser_is_refused_in_one_line(cli, workdir) -> None:
    result = cli("generate", "a red circle", "--cache", "fast", "--compile", "-o", "x.mp4")
    assert result.code == 1
    assert result.err.strip() == (
        "InvalidRequest: --cache fast cannot run on a compiled denoiser (the cache changes "
        "which layers run from step to step); drop --compile or use --cache off."
    )
    assert not list(workdir.iterdir())


def test_an_unknown_cache_level_is_refused() -> None:
    with pytest.raises(promptreel.InvalidRequest, match="'off', 'fast' or 'max'"):
        make_request(prompt="a red circle", cache="fastest")
