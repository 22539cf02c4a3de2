"""Image loading and per-tower preprocessing to NHWC float32 (as the HF processors do).

- siglip: resize to image_size × image_size (bicubic), scale to [-1, 1].
- clip: resize the shortest side to image_size (bicubic), center crop,
  /255, normalize with the OpenAI CLIP mean and std.
- aspect="pad": LLaVA's `expand2square` first pads the image to a square with
  the tower's mean colour (int(mean × 255)), the original centered.
A checkpoint's processor config may give its own mean and std.
"""
import dataclasses
import io

import numpy as np
from PIL import Image

from vlm_jax.registry import Registry

IMAGE_TRANSFORMS = Registry("image preprocessing")
ASPECT_MODES = ("square", "pad")


class BadImageError(ValueError):
  """An image file that exists but cannot be decoded."""


@dataclasses.dataclass(frozen=True)
class ImageTransform:
  mean: tuple
  std: tuple
  shortest_edge_crop: bool  # False: squash to a square; True: resize short side, center crop.

  def __call__(self, image, image_size, aspect="square"):
    """PIL image -> (image_size, image_size, 3) float32."""
    if aspect not in ASPECT_MODES:
      raise ValueError(f"unknown aspect mode {aspect!r}; known: {', '.join(ASPECT_MODES)}")
    image = image.convert("RGB")
    if aspect == "pad":
      image = expand_to_square(image, tuple(int(m * 255) for m in self.mean))
    if self.shortest_edge_crop:
      image = _center_crop(image.resize(_shortest_edge_size(image.size, image_size), Image.BICUBIC),
                           image_size)
    else:
      image = image.resize((image_size, image_size), Image.BICUBIC)
    pixels = np.asarray(image, np.float32) * np.float32(1 / 255)
    return (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)


IMAGE_TRANSFORMS.register("siglip")(ImageTransform(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                                   shortest_edge_crop=False))
IMAGE_TRANSFORMS.register("clip")(ImageTransform(
    mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711),
    shortest_edge_crop=True))


def preprocess_image(image, *, kind, image_size, aspect="square", mean=None, std=None):
  """PIL image -> (image_size, image_size, 3) float32 for the tower `kind`; `mean` and
  `std` (per channel, e.g. a checkpoint's processor config) replace the kind's."""
  transform = IMAGE_TRANSFORMS.get(kind)
  if mean is not None or std is not None:
    transform = dataclasses.replace(transform, mean=tuple(mean or transform.mean),
                                    std=tuple(std or transform.std))
  return transform(image, image_size, aspect)


def expand_to_square(image, fill):
  """LLaVA's expand2square: pad the short side with `fill`, image centered."""
  width, height = image.size
  if width == height:
    return image
  side = max(width, height)
  square = Image.new(image.mode, (side, side), fill)
  square.paste(image, ((side - width) // 2, (side - height) // 2))
  return square


def _shortest_edge_size(size, short):
  """(width, height) with the short side `short`, the long side floored as transformers does."""
  width, height = size
  if width <= height:
    return short, int(short * height / width)
  return int(short * width / height), short


def _center_crop(image, size):
  width, height = image.size
  left, top = (width - size) // 2, (height - size) // 2
  return image.crop((left, top, left + size, top + size))


def load_image(image):
  """A file path, encoded bytes or a uint8 array (H, W[, C]) -> RGB PIL image.

  Raises FileNotFoundError for a missing file, BadImageError for one that
  cannot be decoded.
  """
  if isinstance(image, np.ndarray):
    return Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[-1] == 1 else image
                           ).convert("RGB")
  try:
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as opened:
      return opened.convert("RGB")
  except FileNotFoundError:
    raise
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise BadImageError(f"cannot decode image {image}: {e}") from e
