"""Gatys back-propagation and texture synthesis on small real images."""

import numpy as np
import pytest

import jaxstyle
from jaxstyle.errors import OptionError


def _trend_falls(values, window=5):
    values = np.asarray(values)
    means = [values[i : i + window].mean() for i in range(0, len(values) - window + 1, window)]
    return all(b <= a * 1.02 for a, b in zip(means, means[1:], strict=False))


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


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_other_optimizers_also_converge(small_pair, vgg_params, optimizer):
    content, style = small_pair
    result = jaxstyle.gatys(content, style, vgg_params=vgg_params, size=64, iterations=25, optimizer=optimizer)
    assert result.history[-1]["total"] < 0.5 * result.history[0]["total"]
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0


def test_texture_synthesis_lowers_style_loss_tenfold(small_pair, vgg_params):
    _, style = small_pair
    result = jaxstyle.texture(style, (64, 80), vgg_params=vgg_params, iterations=60, seed=1)
    assert result.image.shape == (64, 80, 3) and result.optimizer == "sign"  # auto: one scale
    assert result.history[-1]["style"] < result.history[0]["style"] / 10
    assert result.history[-1]["content"] == 0.0


def test_options_are_validated():
    with pytest.raises(OptionError, match="iterations"):
        jaxstyle.gatys(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), vgg_params={}, iterations=0)
    with pytest.raises(OptionError, match="optimizer"):
        jaxstyle.gatys(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), vgg_params={}, optimizer="sgd")


def test_gatys_blend_and_preserve_color(small_pair, vgg_params):
    from jaxstyle import color, images

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
    with pytest.raises(OptionError, match="preserve-color"):
        jaxstyle.texture(style, 32, vgg_params=vgg_params, iterations=1, preserve_color=True)


def test_scale_plan_defaults():
    from jaxstyle.backprop import GatysOptions, scale_plan

    assert scale_plan((300, 400), GatysOptions(iterations=500)) == [((300, 400), 500)]  # the paper's size: 1 scale
    assert scale_plan((900, 1200), GatysOptions(iterations=400)) == [
        ((225, 300), 400), ((450, 600), 200), ((900, 1200), 100)]
    assert scale_plan((64, 96), GatysOptions(scale_iterations=(5, 3))) == [((32, 48), 5), ((64, 96), 3)]
    with pytest.raises(OptionError, match="scale-iterations"):
        scale_plan((64, 96), GatysOptions(scales=3, scale_iterations=(5, 3)))
    with pytest.raises(OptionError, match="lower --scales"):
        scale_plan((64, 96), GatysOptions(scales=4))  # 8x12 px at the coarsest scale


def test_multiscale_gives_requested_size_and_beats_single_scale_at_equal_cost(small_pair, vgg_params):
    content, style = small_pair
    common = dict(vgg_params=vgg_params, size=128, seed=0)
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


def test_multiscale_is_not_worse_than_single_scale_at_equal_iterations(data_dir, vgg_params):
    """At 256 px: 10 coarse (128 px) + 50 fine iterations against 60 at full size."""
    from jaxstyle import images

    content = images.fit_long_side(images.load_image(data_dir / "content" / "tubingen.jpg"), 256)
    style = images.load_image(data_dir / "styles" / "starry_night.jpg")
    common = dict(vgg_params=vgg_params, size=256, seed=0)
    multi = jaxstyle.gatys(content, style, scales=2, scale_iterations=(10, 50), **common)
    single = jaxstyle.gatys(content, style, iterations=60, scales=1, **common)
    assert multi.image.shape == single.image.shape and max(multi.image.shape) == 256
    assert multi.history[-1]["total"] <= single.history[-1]["total"], (multi.history[-1], single.history[-1])


def test_coarse_scales_weigh_the_terms_as_the_requested_size_does():
    """The content loss sums over positions (1/4 at half size), the style loss is normalised."""
    from jaxstyle.backprop import GatysOptions, scale_spec

    spec = GatysOptions(content_weight=2.0, style_weight=10.0).loss_spec()
    half = scale_spec(spec, (50, 60), (100, 120))
    assert half.content_weight == pytest.approx(8.0) and half.style_weight == 10.0
    assert half.style_layer_weights == spec.style_layer_weights and half.pooling == spec.pooling
    assert scale_spec(spec, (100, 120), (100, 120)) == spec
    texture = GatysOptions().loss_spec(with_content=False)
    assert scale_spec(texture, (25, 30), (100, 120)).content_weight == 0.0


def test_auto_optimizer_and_explicit_choice():
    from jaxstyle.backprop import GatysOptions, resolve_optimizer

    assert [resolve_optimizer("auto", n) for n in (1, 2, 3)] == ["sign", "adam", "adam"]
    assert resolve_optimizer("sign", 3) == "sign" and resolve_optimizer("lbfgs", 1) == "lbfgs"
    with pytest.raises(OptionError, match="auto, sign, adam, lbfgs"):
        GatysOptions(optimizer="sgd").validate()


def test_upsample_result_adds_the_content_detail():
    from jaxstyle.backprop import upsample_result
    from jaxstyle.images import resize

    rng = np.random.default_rng(0)
    content = rng.random((32, 48, 3), dtype=np.float32)
    coarse = resize(content, 16, 24)
    # Upsampling the coarse content itself with its detail added gives the content back.
    np.testing.assert_allclose(upsample_result(coarse, content, coarse), content, atol=1e-5)
    plain = upsample_result(coarse, content, coarse, add_detail=False)
    assert plain.shape == content.shape and np.abs(plain - content).mean() > 0.05


def test_style_scale_resizes_the_style(monkeypatch, small_pair, vgg_params):
    from jaxstyle import backprop

    content, style = small_pair
    seen = []
    original = backprop.make_targets

    def spy(params, spec, shape, content_img, styles, blend=None):
        seen.append([s.shape[:2] for s in styles])
        return original(params, spec, shape, content_img, styles, blend)

    monkeypatch.setattr(backprop, "make_targets", spy)
    for scale in (1.0, 2.0):
        jaxstyle.gatys(content, style, vgg_params=vgg_params, size=32, iterations=1, style_scale=scale)
    (h1, w1), (h2, w2) = seen[0][0], seen[1][0]
    assert abs(h2 - 2 * h1) <= 1 and abs(w2 - 2 * w1) <= 1
    with pytest.raises(OptionError, match="style-scale"):
        jaxstyle.gatys(content, style, vgg_params=vgg_params, size=32, iterations=1, style_scale=0)
