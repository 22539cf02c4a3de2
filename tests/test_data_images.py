"""Image preprocessing against hand computations and transformers' PIL processors."""
import numpy as np
import pytest
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from vlm_jax.data import images

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])


def random_image(width, height, seed=0):
  return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_siglip_scales_to_minus_one_one():
  array = random_image(6, 6)
  pixels = images.preprocess_image(Image.fromarray(array), kind="siglip", image_size=6)
  assert pixels.dtype == np.float32 and pixels.shape == (6, 6, 3)
  np.testing.assert_allclose(pixels, array / 127.5 - 1.0, atol=1e-6)


def test_clip_center_crops_the_long_side_and_normalizes():
  array = random_image(8, 4)  # short side already 4: only the crop acts
  pixels = images.preprocess_image(Image.fromarray(array), kind="clip", image_size=4)
  expected = (array[:, 2:6] / 255.0 - CLIP_MEAN) / CLIP_STD
  np.testing.assert_allclose(pixels, expected, atol=1e-5)


def test_pad_fills_with_the_mean_colour_as_llava_expand2square():
  array = random_image(4, 2)  # wide: rows above and below get the fill colour
  pixels = images.preprocess_image(Image.fromarray(array), kind="siglip", image_size=4, aspect="pad")
  grey = np.full((1, 4, 3), 127)  # int(0.5 * 255)
  expected = np.concatenate([grey, array, grey]) / 127.5 - 1.0
  np.testing.assert_allclose(pixels, expected, atol=1e-6)

  tall = random_image(1, 3)
  square = images.expand_to_square(Image.fromarray(tall), (122, 116, 104))
  expected = np.array([[(122, 116, 104), tuple(tall[r, 0]), (122, 116, 104)] for r in range(3)])
  np.testing.assert_array_equal(np.asarray(square), expected)


@pytest.mark.parametrize("width,height", [(50, 37), (29, 64), (32, 32)])
def test_matches_transformers_processors(width, height):
  image = Image.fromarray(random_image(width, height, seed=width))
  siglip = SiglipImageProcessorPil(size={"height": 24, "width": 24}, image_mean=[0.5] * 3,
                                   image_std=[0.5] * 3)
  clip = CLIPImageProcessorPil(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24})
  for processor, kind in ((siglip, "siglip"), (clip, "clip")):
    reference = processor(image, return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
    ours = images.preprocess_image(image, kind=kind, image_size=24)
    assert ours.shape == reference.shape == (24, 24, 3)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_load_image_errors_and_arrays(tmp_path):
  with pytest.raises(FileNotFoundError):
    images.load_image(str(tmp_path / "missing.png"))
  corrupt = tmp_path / "corrupt.png"
  corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
  with pytest.raises(images.BadImageError, match="corrupt.png"):
    images.load_image(str(corrupt))
  grey = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
  np.testing.assert_array_equal(np.asarray(images.load_image(grey)), np.repeat(grey, 3, axis=-1))
  with pytest.raises(ValueError, match="aspect"):
    images.preprocess_image(images.load_image(grey), kind="clip", image_size=4, aspect="wide")
