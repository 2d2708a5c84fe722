"""TeaCache's summary on the node in the page: after every sampling run, the node that made
the model (TeaCache or TeaCache Calibrate) shows what happened, as the server's progress text
for that node id (the text the page draws under the node's widgets).

The listener is registered on the TeaCacheRegistration the node's execute() made, with the
node's unique id from the prompt (io.Hidden.unique_id). ComfyUI reuses a node's cached output
while its inputs are unchanged, also for another node with the same inputs, which would send
the text to the node that first made it: the nodes are therefore marked not idempotent
(Schema.not_idempotent, on 0.3.75 and newer), which puts the node id into their cache key. So
a cached TeaCache output is only reused by the node with the same id, and the text goes to the
node whose settings made the run. The text goes to the client that queued the prompt (the
server's client_id while it runs). Outside a server (the node called directly, a script) there
is no PromptServer: the listener does nothing.
"""
from __future__ import annotations

import logging
import sys

logger = logging.getLogger(__name__)


def prompt_server():
    """ComfyUI's running PromptServer, or None (not imported here: only if ComfyUI's server
    module is already loaded and has an instance, as in a running ComfyUI)."""
    mod = sys.modules.get("server")
    cls = getattr(mod, "PromptServer", None)
    return getattr(cls, "instance", None)


def _counts(summary: dict):
    """[(label, skipped, calls)] per cond from the summary's per-call records."""
    out = []
    for label, recs in (summary.get("branches") or {}).items():
        recs = list(recs or [])
        skipped = sum(1 for r in recs if isinstance(r, dict) and r.get("computed") is False)
        out.append((label, skipped, len(recs)))
    return out


def short_text(summary: dict, line: str = "") -> str:
    """A few lines for the node, the most important first (a small node shows only the first):
    steps skipped and the estimated speed-up, the coefficients used, the detail per cond."""
    try:
        counts = _counts(summary)
        est = summary.get("estimated_speedup")
        est_txt = f", est. {est:.2f}x faster" if isinstance(est, (int, float)) else ""
        if counts:
            main = max(counts, key=lambda c: c[1])
            lines = [f"skipped {main[1]}/{main[2]} steps{est_txt}"]
        else:
            lines = ["no model call reached TeaCache"]
        preset = summary.get("preset")
        if preset is not None:
            kind = "published" if summary.get("calibrated") else "raw change"
            if str(preset).startswith("calib:"):
                kind = "your calibration"
            thr = summary.get("threshold")
            extra = [f"thresh {thr:g}"] if isinstance(thr, (int, float)) else []
            if summary.get("retention"):
                extra.append("retention")
            if summary.get("skip_estimate") not in (None, "reuse"):
                extra.append(str(summary["skip_estimate"]))
            lines.append(f"coefficients {preset} ({kind})"
                         + (" | " + ", ".join(extra) if extra else ""))
        if counts:
            per = ", ".join(f"{lab} {s}/{n}" for lab, s, n in counts)
            calls, ran = summary.get("calls"), summary.get("calls_blocks_ran")
            lines.append(f"skipped per cond: {per}"
                         + (f"; blocks ran in {ran}/{calls} model calls" if calls else ""))
        cal = summary.get("calibration")
        if isinstance(cal, dict):
            coeffs = cal.get("coefficients")
            fit = ("not enough samples to fit yet" if not coeffs else
                   f"fit rmse {cal.get('fit_rmse') or 0:.3g}")
            lines = [f"calibration '{cal.get('name')}': +{cal.get('added', 0)} samples, "
                     f"{len(cal.get('samples') or [])} in all, {fit}",
                     f"use model_type calib:{cal.get('name')} (refresh the page)"]
        return "TeaCache: " + "\n".join(lines)
    except Exception:                   # never let a format change break the status
        return line


class NodeStatus:
    """on_finish listener: sends the run's short summary to one node of the page."""

    def __init__(self, node_id, fmt=short_text):
        self.node_id = str(node_id)
        self.fmt = fmt

    def __call__(self, registration, summary, line):
        server = prompt_server()
        send = getattr(server, "send_progress_text", None)
        if send is None:
            return
        text = self.fmt(summary or {}, line or "")
        if text:
            send(text, self.node_id, getattr(server, "client_id", None))

    def __deepcopy__(self, memo):
        return self


def attach(registration, node_id) -> bool:
    """Show the summary of every run of `registration` on node `node_id` (None: no node, as
    when a script calls execute() directly). Returns whether a listener was added."""
    if node_id is None or registration is None:
        return False
    listeners = getattr(registration, "on_finish", None)
    if listeners is None:
        return False
    listeners.append(NodeStatus(node_id))
    return True
