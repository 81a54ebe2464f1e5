"""Gatys back-propagation and texture synthesis on small real images."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxstyle
from jaxstyle.errors import OptionError


def _trend_falls(values, window=5):
    values = np.asarray(values)
    means = [values[i : i + window].mean() for i in range(0, len(values) - window + 1, window)]
    return all(b <= a * 1.02 for a, b in zip(means, means[1:], strict=False))


@pytest.mark.slow  # 49 s
def test_gatys_lowers_total_and_style_loss(small_pair, vgg_params):
    content, style = small_pair
    result = jaxstyle.gatys(content, style, vgg_params=vgg_params, size=96, iterations=60, seed=0)
    totals = [h["total"] for h in result.history]
    styles = [h["style"] for h in result.history]
    assert _trend_falls(totals), totals
    assert totals[-1] < 0.5 * totals[0]
    assert styles[-1] < styles[0] / 10
    assert result.image.shape == (72, 96, 3)
    assert result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0


@pytest.mark.slow  # 79 s
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_other_optimizers_also_converge(small_pair, vgg_params, optimizer):
    content, style = small_pair
    result = jaxstyle.gatys(content, style, vgg_params=vgg_params, size=64, iterations=25, optimizer=optimizer)
    assert result.history[-1]["total"] < 0.5 * result.history[0]["total"]
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0


def test_lbfgs_is_one_evaluation_per_step_with_a_capped_first_step(small_pair, vgg_params):
    """pastiche's (torch) L-BFGS: no line search, so the first step is the gradient scaled to norm 1."""
    from jaxstyle.methods.gatys import loop, optimizers, presets
    from jaxstyle.nn import vgg

    content, style = small_pair
    opts = presets.make_options(size=None)
    spec = opts.loss_spec(with_content=True)
    photo = content[:32, :48]
    targets = loop.make_targets(vgg.to_device(vgg_params), spec, photo.shape[:2], photo, [style[:64, :64]], None)
    step, opt = optimizers.make_step(spec, "lbfgs")
    image = jnp.asarray(photo)[None] * 0.5 + 0.25  # away from the clip
    state = jax.tree.map(jnp.copy, opt.init(image))  # fresh buffers: the step donates them
    new, state, _ = step(jnp.array(image), state, targets, vgg.to_device(vgg_params))
    assert float(jnp.linalg.norm(new - image)) == pytest.approx(1.0, rel=1e-3)
    assert int(optax.tree_utils.tree_get(state, "count")) == 1
    assert optax.tree_utils.tree_get(state, "num_linesearch_steps", None) is None  # no line search state


@pytest.mark.slow  # 50 s
def test_texture_synthesis_lowers_style_loss_tenfold(small_pair, vgg_params):
    _, style = small_pair
    result = jaxstyle.texture(style, (64, 80), vgg_params=vgg_params, iterations=60, seed=1, preset="paper")
    assert result.image.shape == (64, 80, 3) and result.optimizer == "sign"  # the paper's update
    assert result.history[-1]["style"] < result.history[0]["style"] / 10
    assert result.history[-1]["content"] == 0.0


def test_options_are_validated():
    with pytest.raises(OptionError, match="iterations"):
        jaxstyle.gatys(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), vgg_params={}, iterations=0)
    with pytest.raises(OptionError, match="optimizer"):
        jaxstyle.gatys(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), vgg_params={}, optimizer="sgd")


@pytest.mark.slow  # 28 s
def test_gatys_blend_and_preserve_color(small_pair, vgg_params):
    from jaxstyle import color
    from jaxstyle.io import images

    content, style = small_pair
    other = np.ascontiguousarray(style[::-1, ::-1])
    common = dict(vgg_params=vgg_params, size=32, iterations=4, seed=0)
    single = jaxstyle.gatys(content, style, **common)
    blend = jaxstyle.gatys(content, [style, other], style_blend=[1, 0], **common)
    np.testing.assert_array_equal(blend.image, single.image)  # weights (1, 0) are the first style alone
    with pytest.raises(OptionError, match="one weight per style"):
        jaxstyle.gatys(content, [style, other], style_blend=[1], **common)
    kept = jaxstyle.gatys(content, style, preserve_color=True, **common).image
    small = images.fit_long_side(images.to_float_image(content), 32)
    for channel in (1, 2):  # Cb, Cr of the output follow the photo's
        a, b = color.rgb_to_ycbcr(kept)[..., channel], color.rgb_to_ycbcr(small)[..., channel]
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    with pytest.raises(OptionError, match="preserve_color"):
        jaxstyle.texture(style, 32, vgg_params=vgg_params, iterations=1, preserve_color=True)


def test_scale_plan_defaults():
    from jaxstyle.methods.gatys.presets import GatysOptions, make_options
    from jaxstyle.methods.gatys.pyramid import scale_plan

    paper = make_options("paper")
    assert scale_plan((300, 400), paper) == [((300, 400), 400)]  # the paper's size: 1 scale
    assert scale_plan((900, 1200), make_options("paper", iterations=400)) == [
        ((225, 300), 400), ((450, 600), 200), ((900, 1200), 100)]
    assert scale_plan((64, 96), make_options("paper", scale_iterations=(5, 3))) == [((32, 48), 5), ((64, 96), 3)]
    # The default recipe up to 512 px: two scales, size/√2 then the size, 30 + 70 steps.
    assert scale_plan((300, 400), GatysOptions()) == [((212, 283), 30), ((300, 400), 70)]
    assert scale_plan((384, 512), GatysOptions()) == [((272, 362), 30), ((384, 512), 70)]
    # An explicit budget keeps its meaning: steps at the coarsest scale, 1/√2 as many at each finer one.
    assert scale_plan((300, 400), GatysOptions(iterations=200)) == [((212, 283), 200), ((300, 400), 141)]
    # Above 512 px: √2 steps from about 128 px, 70 steps at the coarsest, divided by √2 at each finer one.
    assert scale_plan((900, 1200), GatysOptions()) == [
        ((112, 150), 70), ((159, 212), 49), ((225, 300), 35), ((318, 424), 24), ((450, 600), 17),
        ((636, 849), 12), ((900, 1200), 8)]
    assert [its for _, its in scale_plan((300, 400), GatysOptions(min_size=128))] == [70, 49, 35, 24]
    assert scale_plan((120, 160), GatysOptions()) == [((120, 160), 70)]  # below 181 px: one scale
    with pytest.raises(OptionError, match="scale_iterations"):
        scale_plan((64, 96), GatysOptions(scales=3, scale_iterations=(5, 3)))
    with pytest.raises(OptionError, match="lower scales"):
        scale_plan((64, 96), make_options("paper", scales=4))  # 8x12 px at the coarsest scale
    with pytest.raises(OptionError, match="lower scales"):
        scale_plan((64, 96), GatysOptions(scales=7))  # 8x12 px at the coarsest √2 scale


@pytest.mark.slow  # 47 s
def test_multiscale_gives_requested_size_and_beats_single_scale_at_equal_cost(small_pair, vgg_params):
    content, style = small_pair
    common = dict(vgg_params=vgg_params, size=128, seed=0, preset="paper", optimizer="auto")
    steps = []
    multi = jaxstyle.gatys(content, style, scales=2, scale_iterations=(24, 12), callback=lambda i, *_: steps.append(i),
                           **common)
    assert multi.image.shape == (96, 128, 3) and multi.scales == [[48, 64, 24], [96, 128, 12]]
    assert multi.optimizer == "adam"  # auto: coarse to fine uses Adam
    assert steps == list(range(1, 37)) and len(multi.history) == 37
    # 24 iterations at a quarter of the pixels cost about 6 at full size: compare with 12 + 6.
    single = jaxstyle.gatys(content, style, iterations=18, **common)
    assert single.optimizer == "sign"  # auto: one scale keeps the paper's update
    assert multi.history[-1]["total"] <= single.history[-1]["total"], (multi.history[-1], single.history[-1])


@pytest.mark.slow  # 253 s
def test_multiscale_is_not_worse_than_single_scale_at_equal_iterations(data_dir, vgg_params):
    """At 256 px: 10 coarse (128 px) + 50 fine iterations against 60 at full size."""
    from jaxstyle.io import images

    content = images.fit_long_side(images.load_image(data_dir / "content" / "tubingen.jpg"), 256)
    style = images.load_image(data_dir / "styles" / "starry_night.jpg")
    common = dict(vgg_params=vgg_params, size=256, seed=0, preset="paper", optimizer="auto")
    multi = jaxstyle.gatys(content, style, scales=2, scale_iterations=(10, 50), **common)
    single = jaxstyle.gatys(content, style, iterations=60, scales=1, **common)
    assert multi.image.shape == single.image.shape and max(multi.image.shape) == 256
    assert multi.history[-1]["total"] <= single.history[-1]["total"], (multi.history[-1], single.history[-1])


def test_coarse_scales_weigh_the_terms_as_the_requested_size_does():
    """The content loss sums over positions (1/4 at half size), the style loss is normalised."""
    from jaxstyle.methods.gatys.presets import GatysOptions
    from jaxstyle.methods.gatys.pyramid import scale_spec

    spec = GatysOptions(content_weight=2.0, style_weight=10.0).loss_spec()
    half = scale_spec(spec, (50, 60), (100, 120))
    assert half.content_weight == pytest.approx(8.0) and half.style_weight == 10.0
    assert half.style_layer_weights == spec.style_layer_weights and half.pooling == spec.pooling
    assert scale_spec(spec, (100, 120), (100, 120)) == spec
    texture = GatysOptions().loss_spec(with_content=False)
    assert scale_spec(texture, (25, 30), (100, 120)).content_weight == 0.0


def test_auto_optimizer_and_explicit_choice():
    from jaxstyle.methods.gatys.optimizers import resolve_optimizer
    from jaxstyle.methods.gatys.presets import GatysOptions

    assert [resolve_optimizer("auto", n) for n in (1, 2, 3)] == ["sign", "adam", "adam"]
    assert resolve_optimizer("sign", 3) == "sign" and resolve_optimizer("lbfgs", 1) == "lbfgs"
    with pytest.raises(OptionError, match="auto, sign, adam, lbfgs"):
        GatysOptions(optimizer="sgd").validate()


def test_upsample_result_adds_the_content_detail():
    from jaxstyle.io.images import resize
    from jaxstyle.methods.gatys.pyramid import upsample_result

    rng = np.random.default_rng(0)
    content = rng.random((32, 48, 3), dtype=np.float32)
    coarse = resize(content, 16, 24)
    # Upsampling the coarse content itself with its detail added gives the content back, blurred or not.
    np.testing.assert_allclose(upsample_result(coarse, content, coarse, (32, 48)), content, atol=1e-5)
    np.testing.assert_allclose(upsample_result(coarse, content, coarse, (32, 48), blur=2.0), content, atol=1e-5)
    plain = upsample_result(coarse, None, None, (32, 48))
    assert plain.shape == content.shape and np.abs(plain - content).mean() > 0.05


def test_coarse_blur_takes_a_grid_away_and_keeps_the_layout():
    from jaxstyle.methods.gatys.pyramid import low_pass, upsample_result

    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    layout = np.repeat((xx / 63.0)[..., None], 3, axis=2)  # a smooth ramp
    grid = 0.2 * np.sign(np.sin(np.pi * xx / 2.0))[..., None]  # a 4 px period stripe on top
    coarse = np.clip(layout + grid, 0, 1).astype(np.float32)
    blurred = low_pass(coarse, 4.0)
    assert blurred.dtype == np.float32 and blurred.shape == coarse.shape
    assert np.abs(blurred - layout)[:, 24:40].max() < 0.02  # the stripes gone away from the clipped ends
    assert np.abs(low_pass(coarse, 0.0) - coarse).max() == 0.0
    up = upsample_result(coarse, None, None, (128, 128), blur=4.0)
    assert up.shape == (128, 128, 3) and up.min() >= 0.0 and up.max() <= 1.0
    assert np.abs(np.diff(up[64, 32:96, 0])).max() < 0.03  # no 8 px stripes at the finer scale


def test_style_scale_resizes_the_style(small_pair, vgg_params):
    from jaxstyle.methods.gatys import presets, pyramid

    content, style = small_pair
    # The working style (what the targets are computed from): at the output's pixel count times scale².
    sizes = [pyramid.working_styles([style], (24, 32), presets.GatysOptions(style_scale=scale))[0].shape[:2]
             for scale in (1.0, 2.0)]
    (h1, w1), (h2, w2) = sizes
    assert abs(h2 - 2 * h1) <= 1 and abs(w2 - 2 * w1) <= 1
    # Through jaxstyle.gatys: style_scale 2 at style_size 32 is the run at style_size 64 (the same working
    # style), and not the run at 32.
    common = dict(vgg_params=vgg_params, size=32, iterations=1, seed=0)
    scaled = jaxstyle.gatys(content, style, style_size=32, style_scale=2.0, **common)
    np.testing.assert_array_equal(scaled.image, jaxstyle.gatys(content, style, style_size=64, **common).image)
    assert not np.array_equal(scaled.image, jaxstyle.gatys(content, style, style_size=32, **common).image)
    with pytest.raises(OptionError, match="style_scale"):
        jaxstyle.gatys(content, style, vgg_params=vgg_params, size=32, iterations=1, style_scale=0)


def test_convergence_stop_fires_when_converged_and_not_while_falling():
    from jaxstyle.methods.gatys.loop import converged

    falling = [100.0 * 0.9**i for i in range(30)]  # 10% per step
    assert not converged(falling, tol=0.01, window=10)
    flat = falling + [falling[-1] * (1 - 1e-4 * i) for i in range(1, 12)]
    assert converged(flat, tol=0.01, window=10)
    assert not converged(flat[:5], tol=0.01, window=10)  # too few steps to tell


def test_gatys_stops_when_converged_and_reports_why(small_pair, vgg_params):
    content, style = small_pair
    common = dict(vgg_params=vgg_params, size=48, seed=0, scales=1, window=5)
    still_falling = jaxstyle.gatys(content, style, iterations=12, tol=0.01, **common)
    assert still_falling.stop == "budget" and len(still_falling.history) == 13
    run = jaxstyle.gatys(content, style, iterations=300, tol=0.05, **common)
    steps = len(run.history) - 1
    assert steps < 300 and run.stop == f"converged at step {steps}" and run.stops == [run.stop]
    totals = [h["total"] for h in run.history[:-1]]
    assert totals[-6] - totals[-1] < 0.05 * totals[-1]  # the last window fell by under 5%
    assert totals[-7] - totals[-2] >= 0.05 * totals[-2]  # and the one before did not: it stopped at once
    assert jaxstyle.gatys(content, style, iterations=30, tol=0.0, **common).stop == "budget"
    # The stop is exact although the host reads only every READ_EVERY steps: the steps after it
    # change nothing, so the result is the image of a run with that step as its whole budget.
    exact = jaxstyle.gatys(content, style, iterations=steps, tol=0.0, **common)
    np.testing.assert_array_equal(run.image, exact.image)
    assert run.history == exact.history


def test_gatys_reads_the_device_back_every_few_steps(small_pair, vgg_params, monkeypatch):
    """The loop waits for the device at its reads only: 1 + every READ_EVERY steps (+ the last)."""
    from jaxstyle.methods.gatys import loop

    content, style = small_pair
    reads, device_get = [], jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda x: reads.append(1) or device_get(x))
    steps, seen = [], []
    run = jaxstyle.gatys(content, style, vgg_params=vgg_params, size=48, scales=1, iterations=25, tol=0.001,
                         window=5, callback=lambda i, image, terms: (steps.append(i), seen.append(terms["total"])))
    assert run.stop == "budget" and loop.READ_EVERY == 10
    assert len(reads) == 4  # after steps 1, 10, 20 and 25
    assert steps == list(range(1, 26)) and seen == [h["total"] for h in run.history[:-1]]


def test_paper_preset_is_the_papers_setting(small_pair, vgg_params):
    """Sign update g' = g − ε·sgn(∇L) from content + noise, Gram loss, β = 1e3, avg pooling, 400 its."""
    import jax
    import jax.numpy as jnp

    from jaxstyle import objective
    from jaxstyle.methods.gatys import api, loop, presets
    from jaxstyle.nn import vgg

    paper = presets.make_options("paper")
    assert (paper.optimizer, paper.init, paper.style_weight, paper.pooling, paper.iterations, paper.tol,
            paper.ema) == ("sign", "content+noise", 1e3, "avg", 400, 0.0, 0.0)
    assert presets.make_options("paper", iterations=7).iterations == 7  # explicit options win
    content, style = small_pair
    from jaxstyle.io import images

    photo = images.fit_long_side(content, 32)
    result = api.gatys(content, style, vgg_params=vgg_params, size=32, iterations=1, preset="paper")
    # The same step by hand: the paper's init, its loss and gradient, one sign step of ε = 4/255.
    params = vgg.to_device(vgg_params)
    spec = paper.loss_spec()
    targets = loop.make_targets(params, spec, photo.shape[:2], photo, [images.fit_pixels(style, 32 * 24)])
    start = loop.initial_image("content+noise", photo, photo.shape[:2], 0.1, jax.random.key(0))
    grad = jax.grad(lambda x: objective.loss_terms(x, targets, params, spec)[0])(start)
    expected = jnp.clip(start - (4.0 / 255.0) * jnp.sign(grad), 0.0, 1.0)[0]
    np.testing.assert_allclose(result.image, np.asarray(expected), atol=1e-6)
    assert result.optimizer == "sign" and result.stop == "budget"


def test_ema_and_coarse_to_fine_give_the_size_asked_for_deterministically(small_pair, vgg_params):
    content, style = small_pair
    common = dict(vgg_params=vgg_params, size=64, min_size=32, iterations=6, ema=0.9, seed=3)
    a = jaxstyle.gatys(content, style, **common)
    b = jaxstyle.gatys(content, style, **common)
    assert a.image.shape == (48, 64, 3) and [s[:2] for s in a.scales] == [[24, 32], [34, 45], [48, 64]]
    np.testing.assert_array_equal(a.image, b.image)
    other = jaxstyle.gatys(content, style, **{**common, "ema": 0.0})
    assert np.abs(other.image - a.image).mean() > 1e-4  # the average is not the last iterate
    t1 = jaxstyle.texture(style, (40, 56), vgg_params=vgg_params, min_size=20, iterations=6, ema=0.9, seed=3)
    t2 = jaxstyle.texture(style, (40, 56), vgg_params=vgg_params, min_size=20, iterations=6, ema=0.9, seed=3)
    assert t1.image.shape == (40, 56, 3) and len(t1.scales) == 3 and t1.optimizer == "lbfgs"
    np.testing.assert_array_equal(t1.image, t2.image)
    assert 0.0 <= t1.image.min() and t1.image.max() <= 1.0


def test_lbfgs_restarts_from_its_best_image_when_a_step_diverges():
    from jaxstyle.methods.gatys import loop

    opt = optax.lbfgs(learning_rate=1.0, memory_size=3, linesearch=None)
    good, worse, stepped = (jnp.full((1, 4, 4, 3), v, jnp.float32) for v in (0.2, 0.5, 0.9))
    state = opt.init(good)
    _, state = opt.update(jnp.ones_like(good), state, good)  # one step of memory
    best = {"image": good, "total": jnp.float32(10.0)}
    # within DIVERGED times the best: the step stands, the memory is kept, the best is unchanged
    image, kept, best1 = loop.restart_if_diverged(opt.init, worse, stepped, state, best, jnp.float32(30.0))
    assert np.array_equal(image, stepped) and float(best1["total"]) == 10.0
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(state), strict=True))
    # a lower loss makes the image before the step the best
    _, _, best2 = loop.restart_if_diverged(opt.init, worse, stepped, state, best, jnp.float32(5.0))
    assert np.array_equal(best2["image"], worse) and float(best2["total"]) == 5.0
    # beyond it: back to the best image with a fresh memory
    image, fresh, best3 = loop.restart_if_diverged(opt.init, worse, stepped, state, best, jnp.float32(50.0))
    assert np.array_equal(image, good) and float(best3["total"]) == 10.0
    assert all(np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(fresh), jax.tree.leaves(opt.init(good)), strict=True))
