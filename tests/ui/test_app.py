"""The UI app in-process (Starlette's test client): forms from schemas, guard rules, media roots, rendering."""

from __future__ import annotations

import pytest
from PIL import Image
from starlette.testclient import TestClient

from vltools.core.errors import InvalidInput
from vltools.core.registry import get_registry
from vltools.ui.app import COOKIE, build_ui_app
from vltools.ui.forms import form_fields, parse_form
from vltools.ui.render import render_value

LOCAL = "http://127.0.0.1:8766"


def client(**kw) -> TestClient:
    return TestClient(build_ui_app(**kw), base_url=LOCAL)


def test_form_fields_follow_the_input_schema():
    fields = {f.name: f for f in form_fields(get_registry().get("retrieve.hybrid").input_model.model_json_schema())}
    assert fields["collection"].widget == "text" and fields["collection"].required
    assert fields["k"].widget == "number" and fields["k"].step == "1" and fields["k"].default == 10
    assert fields["bm25_weight"].step == "any"
    cls = {f.name: f for f in form_fields(get_registry().get("image.classify").input_model.model_json_schema())}
    assert cls["labels"].widget == "lines" and cls["descriptions"].widget == "json"
    assert cls["long_text"].widget == "select" and "chunk" in cls["long_text"].options
    parsed = parse_form(list(cls.values()), {"images": "a.png\n b.png \n", "labels": "cat\ndog", "temperature": "0.5",
                                             "descriptions": '{"cat": ["small"]}', "batch_size": ""})
    assert parsed == {"images": ["a.png", "b.png"], "labels": ["cat", "dog"], "temperature": 0.5,
                      "descriptions": {"cat": ["small"]}}
    with pytest.raises(InvalidInput, match="temperature"):
        parse_form(list(cls.values()), {"temperature": "warm"})
    with pytest.raises(InvalidInput, match="descriptions"):
        parse_form(list(cls.values()), {"descriptions": "{not json"})


def test_tool_form_runs_the_tool_and_shows_bad_input(ui_data):
    with client() as c:
        page = c.get("/tool/retrieve.bm25")
        assert page.status_code == 200 and 'name="query"' in page.text and 'name="k"' in page.text
        ok = c.post("/tool/retrieve.bm25", data={"collection": "ui_texts", "query": "turbofan jet engine", "k": "2"})
        assert ok.status_code == 200 and "<td>s03</td>" in ok.text
        bad = c.post("/tool/retrieve.bm25", data={"collection": "ui_texts", "query": "jet", "k": "0"})
        assert bad.status_code == 400 and 'class="error"' in bad.text and "k: Input should be greater" in bad.text


def test_guard_refuses_foreign_hosts_cross_site_posts_and_missing_tokens(ui_data):
    with client() as c:
        assert c.get("/", headers={"host": "evil.example:8766"}).status_code == 421
        assert c.post("/tool/retrieve.bm25", data={"collection": "ui_texts", "query": "x"},
                      headers={"origin": "http://evil.example"}).status_code == 403
        assert c.post("/tool/retrieve.bm25", data={"collection": "ui_texts", "query": "x"},
                      headers={"origin": LOCAL}).status_code == 200
    with client(token="s3cret") as c:
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/login?token=wrong", follow_redirects=False).status_code == 401
        login = c.get("/login?token=s3cret", follow_redirects=False)
        assert login.status_code == 303 and COOKIE in login.headers["set-cookie"]
        assert "httponly" in login.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200  # the cookie now rides along
    with client(host="0.0.0.0", token="s3cret") as c:  # off loopback: any Host, token still required
        assert c.get("/", headers={"host": "box.lan"}).status_code == 401


def test_media_only_from_allowed_roots_and_only_media(tmp_path, monkeypatch):
    from vltools.core.settings import reset_settings

    root = tmp_path / "root"
    root.mkdir()
    Image.new("RGB", (30, 20), "red").save(root / "red.png")
    (root / "notes.txt").write_text("secret")
    Image.new("RGB", (30, 20), "blue").save(tmp_path / "outside.png")
    monkeypatch.setenv("VLTOOLS_ALLOWED_ROOTS", f'["{root}"]')
    reset_settings()
    try:
        with client() as c:
            assert c.get("/media", params={"path": str(root / "red.png")}).content[:4] == b"\x89PNG"
            thumb = c.get("/thumb", params={"path": str(root / "red.png")})
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
            assert c.get("/media", params={"path": str(tmp_path / "outside.png")}).status_code == 403
            assert c.get("/media", params={"path": str(root / "notes.txt")}).status_code == 403
            assert c.get("/thumb", params={"path": str(root / "missing.png")}).status_code == 404
    finally:
        monkeypatch.delenv("VLTOOLS_ALLOWED_ROOTS")
        reset_settings()


def test_results_with_masks_are_overlaid_and_hits_become_thumbnails():
    html = str(render_value({"image": "/d/scene.png", "masks": ["/d/m0.png", "/d/m1.png"], "label": "cat"}))
    assert html.count('class="mask"') == 2 and "/thumb?path=/d/scene.png" in html
    hits = str(render_value([{"id": "a", "path": "/d/a.mp4", "score": 0.5, "rank": 1, "time": 1.25}]))
    assert 'class="hit"' in hits and "/media?path=/d/a.mp4#t=1.25" in hits
    assert "/thumb?path=/d/a.mp4&amp;t=1.250" in hits
    assert "&lt;script&gt;" in str(render_value({"text": "<script>alert(1)</script>"}))


def test_background_run_reports_progress_and_result(ui_data):
    import time

    with client() as c:
        r = c.post("/tool/collection.add", data={"collection": "ui_texts", "__background__": "on",
                                                 "documents": '[{"id": "bg1", "text": "a background document"}]'},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/jobs/r")
        job = r.headers["location"]
        for _ in range(200):
            state = c.get(job + ".json").json()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        assert state["status"] == "done", state
        page = c.get(job)
        assert "added" in page.text and 'id="job-progress"' in page.text
        assert job.removeprefix("/jobs/") in c.get("/jobs").text


def test_destructive_tools_need_a_confirmation(ui_data):
    import vltools

    vltools.call("collection.create", {"name": "ui_doomed", "kind": "text", "model": "none"})
    with client() as c:
        assert 'name="__confirm__"' in c.get("/tool/collection.delete").text
        refused = c.post("/tool/collection.delete", data={"collection": "ui_doomed"})
        assert refused.status_code == 400 and "deletes or overwrites stored data" in refused.text
        assert "ui_doomed" in {x.name for x in vltools.call("collection.list", {}).collections}
        done = c.post("/tool/collection.delete", data={"collection": "ui_doomed", "__confirm__": "on"})
        assert done.status_code == 200
        assert "ui_doomed" not in {x.name for x in vltools.call("collection.list", {}).collections}
