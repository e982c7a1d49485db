"""Schema-driven slot filling on the registry's real input schemas (spaCy; no models)."""

from __future__ import annotations

import pytest

from vltools.agents.parse import parse
from vltools.agents.slots import field_role, fill
from vltools.core.registry import get_registry

COLLECTIONS = {"notes": "text", "papers": "text", "shapes": "image", "clips": "video"}


def schema(name: str) -> dict:
    return get_registry().get(name).input_model.model_json_schema()


def run(name: str, request: str, collections=COLLECTIONS, **kw):
    spec = get_registry().spec(name)
    return fill(schema(name), parse(request, list(collections)), {}, collections,
                allow_new=spec.effects == "writes", **kw)


def test_roles_come_from_the_schema():
    s = schema("image.classify")["properties"]
    assert field_role("images", s["images"]).kind == "path" and field_role("images", s["images"]).media == "image"
    assert field_role("labels", s["labels"]).kind == "list"
    s = schema("image.search")["properties"]
    assert field_role("collection", s["collection"]).media == "image"
    assert field_role("k", s["k"]).kind == "count"
    assert field_role("out_dir", schema("world.generate")["properties"]["out_dir"]).kind == "out_dir"
    assert field_role("name", schema("collection.create")["properties"]["name"]).new is True
    # the role is read from the description, so a field renamed (model -> clip) keeps it
    prop = dict(schema("image.classify")["properties"]["clip"])
    assert field_role("model", prop).kind == "model" and field_role("model", prop).model_kind == "clip"
    prop = schema("collection.create")["properties"]["text_model"]
    assert field_role("text_model", prop).kind == "model" and field_role("text_model", prop).model_kind == "text"


def test_classify_fills_images_labels_and_a_model(tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(b"x")
    f = run("image.classify", f"which label fits {img} best: heart, star or circle? use open_clip:ViT-B-32/openai")
    assert f.input["images"] == [str(img)] and f.input["labels"] == ["heart", "star", "circle"]
    assert f.input["clip"] == "open_clip:ViT-B-32/openai" and "templates" not in f.input and not f.missing


def test_search_fills_query_collection_and_top_k():
    f = run("retrieve.bm25", "keyword search papers for 'laminar flow', top 5")
    assert f.input == {"collection": "papers", "query": "laminar flow", "k": 5}
    f = run("retrieve.dense", "semantic lookup in paper: why do wings stall")  # fuzzy: paper -> papers
    assert f.input["collection"] == "papers" and f.input["query"] == "why do wings stall"
    f = run("image.search", "show me 4 images from shapes that look like a green triangle")
    assert f.input == {"collection": "shapes", "query": "green triangle", "k": 4}


def test_collection_kind_is_checked_and_missing_fields_give_questions():
    f = run("image.search", "find red hearts in notes")
    assert "collection" in f.missing and "image collection" in f.questions[0] and "shapes" in f.questions[0]
    f = run("retrieve.bm25", "lexical keyword lookup for photosynthesis")
    assert f.missing == ["collection"] and f.input["query"] == "photosynthesis"
    assert "notes" in f.questions[0]


def test_counts_by_the_word_they_count_and_the_output_folder(tmp_path):
    f = run("world.generate", f"make me 12 images and 2 videos of shapes in {tmp_path}/out")
    # "of shapes" names the world's theme (world.generate gained `theme` with the objects world)
    want = {"out_dir": f"{tmp_path}/out", "images": 12, "videos": 2, "theme": "shapes"}
    assert f.input == want and f.targets == {"out_dir": "folder"}
    f = run("world.generate", f"put every picture in {tmp_path} into the shapes collection")
    assert f.missing == ["out_dir"] and "out_dir" not in f.input  # a source folder is never the output


def test_paths_by_extension_and_new_collections(tmp_path):
    f = run("eval.retrieval", "nDCG@5 for bm25 on papers with q.jsonl and judged.tsv")
    assert f.input == {"collection": "papers", "queries_path": "q.jsonl", "qrels_path": "judged.tsv", "k": 5,
                       "retriever": "bm25"}
    f = run("collection.create", "set up an empty image collection called holiday2024")
    assert f.input == {"name": "holiday2024", "kind": "image"}
    f = run("collection.create", "describe the clips collection")  # an existing name is not a new one
    assert f.missing == ["name"] and "already exists" in f.questions[0]
    (tmp_path / "a.png").write_bytes(b"x")
    f = run("image.index", f"put every picture in {tmp_path} into the gallery collection")
    assert f.input == {"collection": "gallery", "paths": [str(tmp_path)], "create": True}
    f = run("image.index", f"upload the photos in {tmp_path} to instagram")  # not named as a collection
    assert f.missing == ["collection"]
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    f = run("image.index", f"index {tmp_path}/v into the gallery collection")  # a folder of videos
    assert "paths" in f.missing
    f = run("collection.add", "load docs.jsonl into notes")
    assert f.input == {"collection": "notes", "path": "docs.jsonl"}


@pytest.mark.parametrize(("request_", "pair"), [("is 'puppy' a kind of 'dog'?", ("puppy", "dog")),
                                                 ("opposites? hot vs cold", ("hot", "cold"))])
def test_word_pairs(request_, pair):
    f = run("natlog.relate", request_)
    assert (f.input["evidence_word"], f.input["claim_word"]) == pair
