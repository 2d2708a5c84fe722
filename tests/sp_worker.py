"""One rank of the sequence-parallel tests (test_sequence_parallel.py starts two of these).

Runs in the xDiT overlay venv (scripts/xdit_venv.sh). Every collective has a timeout (the
process group's), so a rank never waits forever; the parent kills both ranks when either fails
or the whole run overstays.

    python sp_worker.py unit  RANK WORLD PORT OUT_DIR
    python sp_worker.py wan   RANK WORLD PORT OUT_DIR MODEL SCENARIOS_JSON
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OP_TIMEOUT_S = int(os.environ.get("TEACACHE_SP_OP_TIMEOUT", "30"))


def init(rank, world, port):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=OP_TIMEOUT_S))
    torch.cuda.set_device = lambda *a, **k: None      # xfuser's init calls it; no GPU here
    # xfuser makes its groups (the SP group among them) with new_group(), whose default
    # timeout is 30 minutes: give them the same short timeout as the world group
    new_group = dist.new_group

    def new_group_with_timeout(*a, **k):
        k.setdefault("timeout", timedelta(seconds=OP_TIMEOUT_S))
        return new_group(*a, **k)
    dist.new_group = new_group_with_timeout


def init_xfuser(world, sp, dp=1):
    from xfuser.core.distributed import init_distributed_environment, initialize_model_parallel
    init_distributed_environment(rank=int(os.environ["RANK"]), world_size=world, backend="gloo")
    initialize_model_parallel(data_parallel_degree=dp, sequence_parallel_degree=sp,
                              ulysses_degree=sp, backend="gloo")


def unit(rank, world, port, out):
    """parallel.py's contract on gloo, without ComfyUI."""
    import torch
    import torch.distributed as dist
    spec = importlib.util.spec_from_file_location("tc_parallel", ROOT / "teacache_core" / "parallel.py")
    par = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(par)
    res = {"before_xfuser": par.find_group({}) is None}
    # data parallel only (SP world size 1): nothing couples the ranks
    init_xfuser(world, sp=1, dp=world)
    from xfuser.core.distributed import get_data_parallel_world_size, get_sequence_parallel_world_size
    res["dp"] = [get_data_parallel_world_size(), get_sequence_parallel_world_size()]
    res["dp_group_is_none"] = par.find_group({}) is None
    # an explicit group is taken
    g = dist.new_group(list(range(world)), backend="gloo")
    res["explicit"] = par.find_group({par.GROUP_KEY: g}) is g

    class FakePatcher:
        model_options = {}
    mp = FakePatcher()
    par.set_sequence_group(mp, g)
    res["set_sequence_group"] = par.find_group(mp.model_options["transformer_options"]) is g
    par.set_sequence_group(mp, None)
    res["unset"] = par.GROUP_KEY not in mp.model_options["transformer_options"]
    # a rank's padding: 7 tokens over 2 ranks = chunks of 4, the last rank holds 1 pad token
    local = torch.arange(4.0).reshape(1, 4, 1) + 4 * rank
    to = {par.GROUP_KEY: g}
    res["valid_explicit"] = par.valid_tokens(local, to, full_tokens=7).shape[1]
    res["valid_grid"] = par.valid_tokens(local, {**to, "grid_sizes": (7, 1, 1)}).shape[1]
    res["valid_key"] = par.valid_tokens(local, {**to, par.TOKENS_KEY: 7}).shape[1]
    res["valid_unknown"] = par.valid_tokens(local, to).shape[1]
    res["valid_even"] = par.valid_tokens(local, to, full_tokens=8).shape[1]
    res["is_view"] = par.valid_tokens(local, to, full_tokens=7).data_ptr() == local.data_ptr()
    s = torch.tensor([1.0 + rank, 10.0 * (rank + 1)])
    par.all_reduce_sum_(s, g)
    res["sum"] = s.tolist()
    par.all_reduce_sum_(s, None)                    # no group: unchanged
    res["sum_none"] = s.tolist()
    (Path(out) / f"unit_rank{rank}.json").write_text(json.dumps(res))


def _patch_find_group(pkg_prefix, replacement):
    """Make every TeaCache module's find_group return None (the negative control)."""
    saved = []
    par = sys.modules[pkg_prefix + ".teacache_core.parallel"]
    orig = par.find_group
    for name, mod in list(sys.modules.items()):
        if name.startswith(pkg_prefix) and getattr(mod, "find_group", None) is orig:
            saved.append((mod, orig))
            mod.find_group = replacement
    return saved


def wan(rank, world, port, out, model_path, scenarios):
    import torch
    import torch.distributed as dist
    sys.path[:0] = [str(HERE), str(ROOT / "devtools")]
    from comfy_env import load_pack
    load_pack()
    init_xfuser(world, sp=world)
    from xfuser.core.distributed import get_sp_group
    import tiny_models as tm
    import sp_standin
    from harness import apply, decisions, summary
    from comfyui_teacache.teacache_core import parallel

    group = parallel.find_group({})
    info = {"found_xfuser_group": group is not None and group is get_sp_group().device_group,
            "world": dist.get_world_size(group) if group is not None else 1}
    model = tm.load(model_path)
    sp_standin.install(model, group, "gather")
    for sc in scenarios:
        sp_standin.STATE.mode = sc["attention"]
        thresh = sc["thresh"]
        if sc.get("thresh_from") is not None:
            # the same threshold on every rank: between the ranks' own rescaled distances
            with open(Path(out) / f"rank{rank}_{sc['thresh_from']}.pt", "rb") as f:
                probe = torch.load(f)
            mine = [r["rescaled"] for r in probe["records"]["cond"] if r["step"] == 1][0]
            both = [None] * world
            dist.all_gather_object(both, mine)
            thresh = (min(both) + max(both)) / 2
        saved = [] if sc["reduce"] else _patch_find_group("comfyui_teacache", lambda to: None)
        try:
            patched = apply(model, thresh)
            noise, latent = sp_standin.inputs(sc)
            y = sp_standin.sample(patched, noise, latent, steps=sc["steps"], cfg=sc["cfg"])
        finally:
            for mod, orig in saved:
                mod.find_group = orig
        res = {"out": y, "decisions": decisions(patched), "thresh": thresh,
               "records": summary(patched)["branches"], **info}
        torch.save(res, Path(out) / f"rank{rank}_{sc['name']}.pt")
        dist.barrier()


def main():
    import faulthandler
    import signal
    faulthandler.register(signal.SIGTERM, chain=False)   # the parent's "time is up": stacks to the log
    kind, rank, world, port, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), sys.argv[5]
    try:
        init(rank, world, port)
        if kind == "unit":
            unit(rank, world, port, out)
        else:
            wan(rank, world, port, out, sys.argv[6], json.loads(Path(sys.argv[7]).read_text()))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    import torch.distributed as dist
    try:
        dist.destroy_process_group()
    except Exception:
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
