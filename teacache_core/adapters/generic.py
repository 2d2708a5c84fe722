"""The generic path: any diffusion transformer whose forward consults ComfyUI's
``transformer_options["patches_replace"]["dit"]`` and that no family adapter claims.

Nothing here is specific to a model. What a family file states by hand is inferred:
- which block keys to gate: the key kinds the model's own module names (``("double_block", i)``,
  ``("single_block", i)``, ``("block", i)``...), for every index up to its longest block list;
  gating a key the forward never asks for costs nothing;
- the block layout, from the first model call TeaCache sees (always computed): the order in
  which the forward calls the gated keys, grouped into stacks (consecutive blocks of one kind),
  and per stack its residual streams (the tensors a block receives and returns under the same
  name with the same shape: ``img`` and ``txt`` for a dual-stream stack, the joint sequence for
  a single-stream one);
- the indicator ("block_input"): the relative L1 change of the first block's main stream input
  (``img`` where there is one).

Each stack and stream gets its own residual span: a skipped call hands every stack's last block
the stack's input plus that stack's cached residual, so whatever the forward does between
stacks (concatenation, slicing, injections, skip connections) still runs on skipped calls.
The cost is memory: one residual per stack and stream (a Flux-like model holds the image
residual of its double blocks, their text residual and the joint residual of its single blocks)
where a family adapter holds one.

Refused (a clear error at the first model call): a block output of another shape than its
input under the same name, or a block that returns a tensor name it was not given.
"""
from __future__ import annotations

import inspect
import re
import sys
from dataclasses import dataclass

import torch

from ..coefficients import PRESETS
from .base import FamilyAdapter, ModelInfo, UnsupportedModelError

_KIND_RE = re.compile(r"""\(\s*["']([A-Za-z_]*block)["']\s*,""")
#: names a main (image/video) stream goes by, most likely first
_MAIN_NAMES = ("img", "x", "hidden_states", "vid", "h")


def _module_sources(dm) -> str:
    """Source text of the modules that define the model's classes (ComfyUI's own files)."""
    out = []
    for c in type(dm).__mro__:
        if c.__module__.startswith(("torch.", "builtins")):
            continue
        mod = sys.modules.get(c.__module__)
        try:
            out.append(inspect.getsource(mod))
        except (TypeError, OSError):
            continue
    return "\n".join(out)


def _replace_kinds(dm) -> list[str]:
    src = _module_sources(dm)
    if "patches_replace" not in src or not re.search(r"""get\(\s*["']dit["']""", src):
        return []
    kinds = []
    for k in _KIND_RE.findall(src):
        if k not in kinds:
            kinds.append(k)
    return kinds


def _longest_block_list(dm) -> int:
    n = 0
    for m in dm.modules():
        if isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential)):
            n = max(n, len(m))
    return n


def _tensors(d) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)} if isinstance(d, dict) else {}


def as_streams(args, out):
    """(the block's output as a dict of named tensors, whether the block returned one bare
    tensor). A bare tensor is named after the argument of its shape (the stream it carries;
    e.g. Hunyuan3D 2.1's blocks take {"x", ...} and return x)."""
    if isinstance(out, dict):
        return out, False
    if isinstance(out, torch.Tensor):
        given = {k: v for k, v in _tensors(args).items() if v.shape == out.shape}
        name = next((n for n in _MAIN_NAMES if n in given), next(iter(given), "(output)"))
        return {name: out}, True
    return {}, False


@dataclass(frozen=True)
class Stack:
    start: int                  # gate index of its first block
    end: int                    # gate index of its last block
    kind: str
    streams: tuple              # residual stream names
    tensor_out: bool = False    # its blocks return one bare tensor (the single stream)


@dataclass(frozen=True)
class Layout:
    keys: tuple                 # the gated keys in the order one model call runs them
    stacks: tuple
    main: str                   # the first stack's stream the decision reads

    def span_name(self, stack_no: int, stream: str):
        return f"{stack_no}:{stream}"

    def entering(self, idx: int):
        """(span name, stream) of every span that starts at gate idx, the main span left out
        (the decision's own bookkeeping keeps it)."""
        out = []
        for n, st in enumerate(self.stacks):
            if st.start == idx:
                out += [(self.span_name(n, s), s) for s in st.streams
                        if not (n == 0 and s == self.main)]
        return out

    def stack_at(self, idx: int) -> Stack:
        return next(st for st in self.stacks if st.start <= idx <= st.end)

    def exiting(self, idx: int):
        """(span name or None for the main span, stream) of every span that ends at gate idx."""
        out = []
        for n, st in enumerate(self.stacks):
            if st.end == idx:
                out += [(None if n == 0 and s == self.main else self.span_name(n, s), s)
                        for s in st.streams]
        return out

    def describe(self) -> str:
        parts = [f"{st.kind} x{st.end - st.start + 1} ({', '.join(st.streams)})"
                 for st in self.stacks]
        return f"{len(self.stacks)} stack(s): " + "; ".join(parts) + f"; decides on {self.main}"


def infer_layout(seen, model_name: str) -> Layout:
    """The layout from what the gates saw in one call: [(key, arg tensor shapes, out tensor
    shapes[, returned a bare tensor])] in call order."""
    if not seen:
        raise UnsupportedModelError(
            f"TeaCache (generic path) cannot cache {model_name}: its forward called none of the "
            "block hooks (patches_replace) TeaCache set. Remove TeaCache for this model.")
    stacks, start = [], 0
    for i in range(1, len(seen) + 1):
        if i == len(seen) or seen[i][0][0] != seen[start][0][0]:
            streams = None
            for key, args, out, *_ in seen[start:i]:
                for name, shape in out.items():
                    if name not in args:
                        raise UnsupportedModelError(
                            f"TeaCache (generic path) cannot cache {model_name}: block {key} "
                            f"returns '{name}', which it was not given. Remove TeaCache for "
                            "this model.")
                    if args[name] != shape:
                        raise UnsupportedModelError(
                            f"TeaCache (generic path) cannot cache {model_name}: block {key} "
                            f"turns '{name}' of shape {tuple(args[name])} into "
                            f"{tuple(shape)}. Remove TeaCache for this model.")
                names = tuple(out)
                streams = names if streams is None else tuple(n for n in streams if n in names)
            if not streams:
                raise UnsupportedModelError(
                    f"TeaCache (generic path) cannot cache {model_name}: its {seen[start][0][0]} "
                    "blocks return no tensor they were given. Remove TeaCache for this model.")
            bare = bool(seen[start][3]) if len(seen[start]) > 3 else False
            stacks.append(Stack(start, i - 1, seen[start][0][0], streams, bare))
            start = i
    first = stacks[0].streams
    main = next((n for n in _MAIN_NAMES if n in first), first[0])
    return Layout(tuple(s[0] for s in seen), tuple(stacks), main)


class GenericAdapter(FamilyAdapter):
    family = "generic"
    display = ("generic path: any other diffusion transformer with ComfyUI block hooks "
               "(SD3/SD3.5, AuraFlow, HunyuanDiT, Lens, JoyImage, MageFlow, and those to come)")
    hook = "replace"
    dynamic = True              # keys are candidates; the layout is found at the first call
    indicators = ("block_input",)
    calibration_indicator = "block_input"
    calibration_keys = ("class", "hidden", "blocks")

    def __init__(self):
        self.layout: Layout | None = None

    def for_model(self, dm) -> "GenericAdapter":
        """A fresh instance per TeaCache node: the layout it finds belongs to that model."""
        return type(self)()

    def matches(self, dm) -> bool:
        return bool(_replace_kinds(dm)) and _longest_block_list(dm) > 0

    def describe(self, dm) -> ModelInfo:
        name = type(dm).__name__
        n = _longest_block_list(dm)
        hidden = 0
        for p in dm.parameters():
            if p.ndim == 2:
                hidden = int(p.shape[0])
                break
        return ModelInfo(self.family, name, {"class": name, "blocks": n, "hidden": hidden},
                         f"{name} (generic path)")

    def block_keys(self, dm) -> list:
        n = _longest_block_list(dm)
        return [(k, i) for k in _replace_kinds(dm) for i in range(n)]

    def auto_preset(self, info, latent_shape=None):
        return PRESETS["generic"]

    def select_preset(self, info, model_type, retention, latent_shape=None):
        if retention:
            raise ValueError("retention_mode is Wan's; turn it off for this model.")
        if model_type in ("auto", "uncalibrated", "generic"):
            return PRESETS["generic"]
        raise ValueError(f"{info.description} has no published coefficients: choose 'auto' "
                         f"(uncalibrated) or a calibration of this model, not {model_type!r}.")

    # ---- block I/O: the main stream, named by the layout (or guessed before it is known) --
    def main_stream(self, args) -> str:
        if self.layout is not None:
            return self.layout.main
        tensors = _tensors(args)
        for n in _MAIN_NAMES:
            if n in tensors:
                return n
        for n, t in tensors.items():
            if t.ndim >= 3:
                return n
        raise UnsupportedModelError("TeaCache (generic path): the first block received no "
                                    "hidden-state tensor. Remove TeaCache for this model.")

    def block_input(self, key, args) -> torch.Tensor:
        return args[self.main_stream(args)]

    def passthrough(self, key, args):
        return dict(_tensors(args))

    def block_output(self, key, args, out) -> torch.Tensor:
        return out[self.main_stream(args)]

    def with_output(self, key, args, out, t):
        return {**out, self.main_stream(args): t}

    def indicator(self, name: str, ctx, args) -> torch.Tensor:
        if name != "block_input":
            raise ValueError(f"the generic path measures 'block_input', not {name!r}")
        # a copy: blocks may change their input in place, and the engine keeps it
        return args[self.main_stream(args)].detach().clone()


ADAPTER = GenericAdapter()
