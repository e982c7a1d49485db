"""Why SuperGlobal's neighbour refinement gains little on world data: first-stage precision of the
`bench_image2.py --only rerank` DEV queries (same seeds and database), and how many of a relevant
candidate's K nearest candidates (among the top 50) are relevant.

    PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/diag_superglobal_neighbours.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BASE = 9_000_000 + 3_000_000  # as bench_image2.py


def names(split: str) -> list[str]:
    from vltools.world import concepts

    return [c["name"] for c in concepts(split)]


def main() -> None:
    import torch

    from vltools.core.settings import Settings
    from vltools.models.clip import get_clip
    from vltools.world import generate_object_scene

    torch.set_num_threads(1)
    backend = get_clip("demo", Settings(device="cpu"))
    rng = np.random.default_rng(6)  # the same draws as bench_rerank (full size)
    n_cls, n_var, n_q = 30, 6, 2
    cls = [str(c) for c in rng.choice(names("all"), n_cls, replace=False)]
    db, db_owner, queries, q_owner = [], [], [], []
    for ci, c in enumerate(cls):
        for v in range(n_var + 2 * n_q):
            extra = [str(rng.choice(names("all")))] if rng.random() < 0.5 else []
            sc = generate_object_scene(BASE + 400_000 + 100 * ci + v, concept_names=[c, *extra], split="all",
                                       tint_p=0.3)
            if v < n_var:
                db.append(sc.image)
                db_owner.append(c)
            elif v < n_var + n_q:  # the DEV queries
                queries.append(sc.image)
                q_owner.append(c)
    for i in range(2 * n_cls):
        db.append(generate_object_scene(BASE + 450_000 + i, split="all").image)
        db_owner.append("distractor")
    g = backend.encode_images(db)
    q = backend.encode_images(queries)
    owner = np.array(db_owner)
    p_at: dict[int, list[float]] = {1: [], 2: [], 9: []}
    near: dict[int, list[float]] = {2: [], 9: []}
    for qi in range(len(queries)):
        top = np.argsort(-(g @ q[qi]))[:50]
        rel = owner[top] == q_owner[qi]
        for k, v in p_at.items():
            v.append(float(rel[:k].mean()))
        c = g[top]
        s = c @ c.T
        for k, v in near.items():
            for i in np.flatnonzero(rel):
                nn = [j for j in np.argsort(-s[i]) if j != i][:k]
                v.append(float(rel[nn].mean()))
    print({f"P@{k}": round(float(np.mean(v)), 3) for k, v in p_at.items()},
          {f"relevant candidates' {k} nearest candidates relevant": round(float(np.mean(v)), 3)
           for k, v in near.items()})


if __name__ == "__main__":
    main()
