"""The one shared tester every registered model's test subclasses (cf. smp tests/models/base.py).

A subclass sets ``name`` (and ``has_deep_supervision`` / ``spatial`` when they differ)."""

from __future__ import annotations

import json

import pytest
import torch

from brats_seg.errors import BratsSegError
from brats_seg.models.base import InputSizeError
from brats_seg.models.registry import build_model


class ModelTester:
    name: str = ""
    has_deep_supervision: bool = True
    spatial: tuple[int, int, int] = (16, 16, 8)
    batch: int = 2
    extra_kwargs: dict = {}

    def build(self, **kwargs):
        torch.manual_seed(0)
        return build_model(self.name, preset="tiny", **{**self.extra_kwargs, **kwargs})

    def inputs(self, spatial=None):
        return torch.randn(self.batch, 4, *(spatial or self.spatial))

    def test_forward_backward(self):
        model = self.build().train()
        x = self.inputs()
        y = model(x)
        assert isinstance(y, torch.Tensor) and y.shape == (self.batch, 3, *self.spatial)
        y.float().pow(2).mean().backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), "every parameter gets a finite gradient"
        assert sum(float(g.abs().sum()) for g in grads) > 0
        model.eval()
        with torch.no_grad():
            z = model(x)
        assert isinstance(z, torch.Tensor) and z.shape == (self.batch, 3, *self.spatial)

    def test_deep_supervision(self):
        model = self.build(deep_supervision=True).train()
        y = model(self.inputs())
        if not self.has_deep_supervision:
            assert isinstance(y, torch.Tensor) and y.shape == (self.batch, 3, *self.spatial)
            return
        assert isinstance(y, list) and len(y) >= 2
        for k, out in enumerate(y):
            assert out.shape == (self.batch, 3, *(s // 2**k for s in self.spatial)), f"head {k}"
        sum(o.mean() for o in y).backward()
        model.eval()
        with torch.no_grad():
            assert model(self.inputs()).shape == (self.batch, 3, *self.spatial)

    def test_size_check(self):
        model = self.build().eval()
        d = model.size_divisor
        assert isinstance(d, int) and d >= 1
        bad = (self.spatial[0] + (d // 2 or 1), *self.spatial[1:])
        if d > 1:
            with pytest.raises(InputSizeError, match=f"multiples of {d}"):
                model(self.inputs(bad))
        with pytest.raises(BratsSegError, match="input channels"):
            model(torch.zeros(1, 3, *self.spatial))

    def test_rebuild_from_kwargs(self):
        model = self.build(deep_supervision=self.has_deep_supervision)
        kwargs = json.loads(json.dumps(model.build_kwargs))  # as a checkpoint stores them
        again = build_model(self.name, **kwargs)
        a, b = model.state_dict(), again.state_dict()
        assert list(a) == list(b)
        assert all(a[k].shape == b[k].shape for k in a)
        again.load_state_dict(a)
        model.eval(), again.eval()
        x = self.inputs()
        with torch.no_grad():
            torch.testing.assert_close(model(x), again(x))

    def test_encoder_prefixes(self):
        model = self.build()
        keys = list(model.state_dict())
        prefixes = model.encoder_prefixes
        assert prefixes and all(any(k.startswith(p) for k in keys) for p in prefixes)
        assert not all(any(k.startswith(p) for p in prefixes) for k in keys), "the decoder is not encoder"
