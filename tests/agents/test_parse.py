"""The request parser: paths and their roles, lists, counts, quoted text, names, word pairs, clauses (spaCy)."""

from __future__ import annotations

from vltools.agents.parse import parse, split_clauses


def test_lists_paths_and_content(tmp_path):
    img = tmp_path / "a.png"
    img.write_bytes(b"x")
    p = parse(f"which label fits {img} best: heart, star or circle?")
    assert p.lists == [["heart", "star", "circle"]]
    assert [(m.text, m.kind, m.exists, m.role) for m in p.paths] == [(str(img), "image", True, "source")]
    q = parse("label /nowhere/b.jpg as one of: cat, dog, bird")
    assert q.lists == [["cat", "dog", "bird"]] and q.paths[0].exists is False
    assert parse("is it a square, a triangle or a circle").lists == [["square", "triangle", "circle"]]
    assert parse("classify x.png as red circle, blue square or green star").lists == [
        ["red circle", "blue square", "green star"]]


def test_path_roles_follow_the_preposition_and_the_verb(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.png").write_bytes(b"x")
    p = parse(f"put every picture in {tmp_path}/in into the shapes collection")
    assert [(m.role, m.kind, m.contents) for m in p.paths] == [("source", "dir", "image")]
    assert p.names[0] == "shapes"
    assert parse(f"generate 5 pictures in {tmp_path}/out").paths[0].role == "dest"
    assert parse(f"save 20 images into {tmp_path}/out").paths[0].role == "dest"
    assert parse(f"index the images from {tmp_path}/in").paths[0].role == "source"
    kinds = [m.kind for m in parse("evaluate with q.jsonl and qrels.tsv on clip.mp4").paths]
    assert kinds == ["jsonl", "table", "video"]


def test_numbers_with_their_role():
    assert (5, "top") in parse("search notes for ice, top 5").numbers
    assert (12, "image") in parse("make 12 images and 2 videos").numbers
    assert (2, "video") in parse("make 12 images and 2 videos").numbers
    assert (10, "at") in parse("nDCG@10 of bm25 on papers").numbers
    assert (3, "picture") in parse("show me three pictures of stars").numbers


def test_quoted_text_names_models_pairs_and_command_words():
    p = parse("keyword search router_notes for 'sea ice' top 2", ["router_notes"])
    assert p.quoted == ["sea ice"] and "router_notes" in p.names
    assert parse("don't search the user's notes").quoted == []  # apostrophes are not quotes
    assert parse("classify it with open_clip:ViT-B-32/openai").models == ["open_clip:ViT-B-32/openai"]
    assert parse("what is the natural logic relation between hot and cold").pairs == [("hot", "cold")]
    assert parse("is poodle a kind of dog").pairs == [("poodle", "dog")]
    assert parse("find documents in papers that mention boundary layer transition", ["papers"]).content == (
        "boundary layer transition")
    assert parse("is it true that global warming stopped in 1998, check it against the climate collection"
                 ).content == "global warming stopped in 1998"
    assert parse("a new collection called lectures").names[0] == "lectures"


def test_clauses():
    assert split_clauses("index the pictures in /d into photos, then find red hearts") == [
        "index the pictures in /d into photos", "find red hearts"]
    assert split_clauses("how many docs are in notes? then delete scratch") == [
        "how many docs are in notes", "delete scratch"]
    assert split_clauses("list my collections; describe shapes; search shapes for stars") == [
        "list my collections", "describe shapes", "search shapes for stars"]
    assert split_clauses("search for 'a, then b' in notes") == ["search for 'a, then b' in notes"]
    assert split_clauses("what colour is it?") == ["what colour is it?"]
