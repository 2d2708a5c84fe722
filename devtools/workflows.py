"""UI-format workflow -> API-format prompt, using the server's own /object_info, as the ComfyUI
page does it (its "Queue" button), including muted and bypassed nodes.

Strict on purpose: every widget value must be consumed in the server's input order, every
link must connect matching types, so that a widget-order or wiring mistake in a workflow fails
instead of sampling with shifted settings.

Node modes, as the page handles them: 0 = active; 2 = muted ("never"): the node is left out,
and inputs linked to it are left unset; 4 = bypassed: the node is left out and each of its
outputs is wired to the source of one of its own inputs of the same type (the input at the
output's own index when its type matches, else the first input of that type), so that e.g. a
bypassed TeaCache hands the sampler the model it was given.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_workflows"

# nodes the page keeps to itself (never sent to the server)
VIRTUAL = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_CONTROLS = {"fixed", "increment", "decrement", "randomize"}
ACTIVE, MUTED, BYPASSED = 0, 2, 4      # LiteGraph node modes


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def load(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _is_widget(spec) -> bool:
    typ = spec[0]
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if opts.get("forceInput"):
        return False
    return isinstance(typ, list) or typ in WIDGET_TYPES


def _opts(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def _input_order(info) -> dict:
    return info.get("input_order") or {sec: list(info["input"].get(sec, {}))
                                       for sec in ("required", "optional")}


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API prompt ComfyUI's page would queue for this workflow."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {ln[0]: ln for ln in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        typ, nid = node["type"], node["id"]
        where = f"node {nid} ({node.get('title') or typ})"
        if typ in VIRTUAL:
            continue
        if node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        if node.get("mode", 0) != 0:
            raise ValueError(f"{where}: unknown node mode {node.get('mode')!r}")
        if typ not in object_info:
            raise ValueError(f"{where}: the server has no node type {typ!r} (missing node)")
        info = object_info[typ]
        values = list(node.get("widgets_values") or [])
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs, k = {}, 0
        order = _input_order(info)
        for sec in ("required", "optional"):
            for name in order.get(sec, []):
                spec = info["input"][sec][name]
                if _is_widget(spec):
                    if k >= len(values) and sec == "optional" and "default" in _opts(spec):
                        # saved before this optional input was appended: the page fills
                        # in its default
                        inputs[name] = _opts(spec)["default"]
                        continue
                    if k >= len(values):
                        raise ValueError(f"{where}: no widget value for {name!r} "
                                         f"(widgets_values has {len(values)})")
                    value = values[k]
                    k += 1
                    opts = _opts(spec)
                    if opts.get("control_after_generate") or (
                            name in ("seed", "noise_seed") and spec[0] == "INT"):
                        if k >= len(values) or values[k] not in SEED_CONTROLS:
                            raise ValueError(f"{where}: {name!r} must be followed by its "
                                             f"control_after_generate value")
                        k += 1
                    if opts.get("image_upload") and k < len(values) and values[k] == "image":
                        k += 1                     # the upload button's own widget value
                    _check_value(where, name, spec, value)
                    inputs[name] = value
                if name in linked:
                    src = _source(where, name, spec, linked[name], links, nodes, object_info)
                    if src is not None:
                        inputs[name] = src
                    else:
                        inputs.pop(name, None)
        if k != len(values):
            raise ValueError(f"{where}: {len(values) - k} widget value(s) left over: "
                             f"{values[k:]!r} (widget order?)")
        unknown = set(linked) - {n for sec in order.values() for n in sec}
        if unknown:
            raise ValueError(f"{where}: links into unknown inputs {sorted(unknown)}")
        prompt[str(nid)] = {"class_type": typ, "inputs": inputs,
                            "_meta": {"title": node.get("title") or info.get("display_name") or typ}}
    return prompt


def _check_value(where, name, spec, value):
    typ, opts = spec[0], _opts(spec)
    if typ == "COMBO" or isinstance(typ, list):
        return                      # the server validates choices (model lists included)
    if typ in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: {name!r} = {value!r} is not a number")
        if typ == "INT" and value != int(value):
            raise ValueError(f"{where}: {name!r} = {value!r} is not an integer")
        lo, hi = opts.get("min"), opts.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{where}: {name!r} = {value!r} outside [{lo}, {hi}]")
    elif typ == "BOOLEAN" and not isinstance(value, bool):
        raise ValueError(f"{where}: {name!r} = {value!r} is not a boolean")
    elif typ == "STRING" and not isinstance(value, str):
        raise ValueError(f"{where}: {name!r} = {value!r} is not a string")


def _source(where, name, spec, link_id, links, nodes, object_info):
    ln = links.get(link_id)
    if ln is None:
        raise ValueError(f"{where}: input {name!r} names link {link_id}, which does not exist")
    _, src_id, slot, dst_id, _, _ = ln[:6]
    src = nodes[src_id]
    out_types = object_info[src["type"]]["output"]
    out_type = out_types[slot]
    want = spec[0]
    if not isinstance(want, list) and want != "*" and out_type != "*" and out_type != want:
        raise ValueError(f"{where}: input {name!r} ({want}) is linked to {src['type']} "
                         f"output {slot} ({out_type})")
    mode = src.get("mode", 0)
    if mode == MUTED:
        return None
    if mode == BYPASSED:
        return _through_bypass(where, name, spec, src, slot, out_type, links, nodes, object_info)
    return [str(src_id), slot]


def _through_bypass(where, name, spec, node, slot, out_type, links, nodes, object_info):
    """The source a bypassed node's output `slot` passes on (None: nothing)."""
    ins = node.get("inputs", [])
    pick = None
    if slot < len(ins) and ins[slot].get("type") == out_type:
        pick = ins[slot]
    else:
        pick = next((i for i in ins if i.get("type") == out_type), None)
    if pick is None or pick.get("link") is None:
        return None
    return _source(where, name, spec, pick["link"], links, nodes, object_info)


def set_mode(workflow: dict, node_ids, mode: int) -> dict:
    """A copy of the workflow with these nodes set to `mode` (ACTIVE, MUTED, BYPASSED)."""
    wf = copy.deepcopy(workflow)
    ids = {int(i) for i in node_ids}
    for n in wf["nodes"]:
        if n["id"] in ids:
            n["mode"] = mode
    return wf




def nodes_of(prompt: dict, class_type: str) -> dict:
    return {k: v for k, v in prompt.items() if v["class_type"] == class_type}


def ui_nodes_of(workflow: dict, node_type: str) -> list:
    return [n for n in workflow["nodes"] if n["type"] == node_type]
