"""The ``data.*`` tools: curate, audit and rewrite image-text datasets given as JSONL
(``{"text": ..., "image"?: ..., "source"?: ...}`` per line), each writing a JSONL and/or returning a report.

Modules: `curate` (data.curate_metaclip, data.cluster_topics), `captions` (data.caption_quality,
data.rewrite_captions, data.enrich_captions), `mixture` (data.source_mixture), `_io` (reading/writing).
"""
