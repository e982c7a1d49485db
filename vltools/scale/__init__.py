"""Indexing past one process: resumable, sharded embedding jobs on Ray (install extra ``scale``) or locally.

    from vltools.scale import IndexSpec, run_index
    run_index(IndexSpec(collection="photos", kind="image", model="demo", inputs=["/data/*.jpg"],
                        executor="ray", workers=2), settings)

The CLI is ``vltools index``; the tools take ``executor: "ray"`` (image.index, video.index,
collection.add). Importing this package imports neither ray, pyarrow nor torch.
"""

from vltools.scale.job import IndexResult, IndexSpec, run_index

__all__ = ["IndexResult", "IndexSpec", "run_index"]
