"""A PyTorch QueCC written from DESIGN.md §3, with the paper's state-dict names."""
import math

import torch


def _stack(d_in, d):
  return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.GELU(), torch.nn.Linear(d, d),
                             torch.nn.LayerNorm(d, eps=1e-6))


class TorchQueCC(torch.nn.Module):
  """The paper's module layout (state-dict names included); regions as a batch of attentions."""

  def __init__(self, d, d_multi, d_text, g, k, heads):
    super().__init__()
    self.text_projection = torch.nn.Sequential(torch.nn.Linear(d_text, d),
                                               torch.nn.LayerNorm(d, eps=1e-6))
    self.q_proj = _stack(d, d)
    self.k_proj = _stack(d_multi, d)
    self.v_proj = _stack(d_multi, d)
    self.q_downsample = torch.nn.Conv2d(d, d, k, stride=k, groups=d)
    self.clip_attn = torch.nn.MultiheadAttention(d, heads, batch_first=True)
    self.d, self.g, self.k = d, g, k

  def forward(self, x, multi, text):
    """x (B, g*g, d), multi (B, g*g, L*d), text (B, d_t) -> (B, h*w, d)."""
    b, d, g, k = x.shape[0], self.d, self.g, self.k
    x = x + self.text_projection(text)[:, None, :]
    q = self.q_downsample(self.q_proj(x).transpose(1, 2).reshape(b, d, g, g))
    h, w = q.shape[2:]
    q = q.permute(0, 2, 3, 1).reshape(b * h * w, 1, d)

    def by_region(t):
      t = t.reshape(b, h, k, w, k, d).permute(0, 1, 3, 2, 4, 5)
      return t.reshape(b * h * w, k * k, d)

    out = self.clip_attn(q, by_region(self.k_proj(multi)), by_region(self.v_proj(multi)))[0]
    return out.reshape(b, h * w, d)


def randomize(module, seed):
  """Random weights everywhere, biases and LayerNorm affine included (torch zeros some)."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      noise = torch.randn(p.shape, generator=generator)
      if p.ndim > 1:
        p.copy_(noise / math.sqrt(p[0].numel()))
      elif name.endswith("weight"):  # LayerNorm scale
        p.copy_(1 + 0.2 * noise)
      else:
        p.copy_(0.2 * noise)
