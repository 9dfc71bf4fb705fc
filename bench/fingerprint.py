"""Fingerprints of training results, to show a refactor changed no number: for each config (every method,
the default MSQ and uniform runs, a budget, coresets) on one thread, the final accuracy, loss, widths, λ
and a sha256 of the final state_dict. Run it on the commit before and after; the lines must be equal.

    python bench/fingerprint.py > before.jsonl     # (on the old commit)
    python bench/fingerprint.py | diff before.jsonl -

Issue 11 (the method registry): all 7 lines identical before and after (msq-default: 96.9%, 8/2/2/2/8).
"""
import hashlib, json, sys, io
import torch
torch.set_num_threads(1)
from msq.config import RunConfig
from msq.training.trainer import Trainer

def digest(model):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        if torch.is_tensor(v):
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()[:16]

CONFIGS = {
    "msq-default": {},
    "uniform-default": {"method": "uniform"},
    "msq-budget": {"prune": {"target_avg_bits": 3.0}, "train": {"pretrain_epochs": 2, "search_epochs": 4, "finetune_epochs": 1}},
    "bsq-short": {"method": "bsq", "train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}},
    "hawq-short": {"method": "hawq", "prune": {"target_avg_bits": 3.0}, "train": {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1}},
    "multibit-short": {"method": "multibit", "train": {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1}},
    "multibit-coreset": {"method": "multibit", "multibit": {"coreset_fraction": 0.5}, "train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}},
}
names = sys.argv[1:] or list(CONFIGS)
for name in names:
    base = RunConfig().to_dict()
    for k, v in CONFIGS[name].items():
        if isinstance(v, dict): base[k].update(v)
        else: base[k] = v
    base["train"]["threads"] = 1
    cfg = RunConfig.from_dict(base)
    t = Trainer(cfg)
    s = t.fit()
    bits = [l["bits"] for l in s["layers"]]
    print(json.dumps({"name": name, "acc": s["final_acc"], "loss": s["final_val_loss"], "avg_bits": s["average_bits"],
                      "bits": bits, "lam": s["lam"], "digest": digest(t.model)}), flush=True)
