"""Video II tools through the faces: MCP over HTTP with progress, the CLI, LangChain/LangGraph streaming."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from mcp.client.streamable_http import streamablehttp_client

import vltools

from ._client import BackgroundSession
from .conftest import serve_http

TOKEN = "video-token-0123456789"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from vltools.world import generate_object_video, write_video

    v = generate_object_video(4_600_001)
    return str(write_video(v.frames, tmp_path_factory.mktemp("faces_video") / "v.mp4", v.fps)), v


@pytest.fixture(scope="module")
def http_session(server_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("http_video") / "server.log"
    with serve_http({**server_env, "VLTOOLS_HTTP_TOKEN": TOKEN}, log, "--host", "127.0.0.1") as url:
        client = BackgroundSession(lambda: streamablehttp_client(url + "/mcp",
                                                                 headers={"Authorization": f"Bearer {TOKEN}"})).start()
        yield client
        client.close()


def test_video_ground_over_mcp_reports_progress(http_session, clip):
    path, v = clip
    got = []

    async def on_progress(progress, total, message):
        got.append((progress, message))

    args = {"video": path, "query": v.events[0]["caption"]}
    r = http_session.call(lambda s: s.call_tool("video_ground", args, progress_callback=on_progress,
                                                read_timeout_seconds=timedelta(seconds=300)))
    assert not r.isError, r.content
    assert set(r.structuredContent) >= {"moments", "saliency"} and r.structuredContent["moments"]
    assert got and any("frames" in (m or "") for _, m in got)


def test_video_errors_over_mcp_are_tool_errors(http_session, tmp_path):
    empty = tmp_path / "e.mp4"
    empty.write_bytes(b"")
    r = http_session.call(lambda s: s.call_tool("t2v_score", {"video": str(empty), "prompt": "a dog"}))
    assert r.isError and "empty" in r.content[0].text


def test_video_describe_through_the_cli(run_cli, clip):
    path, v = clip
    code, out, err = run_cli("call", "video.describe", "--json", json.dumps({"video": path}))
    assert code == 0, err
    assert json.loads(out)["events"]


def test_video_tools_as_langchain_tools_and_graph_progress_in_langgraph(clip, tmp_path):
    path, v = clip
    (tool,) = vltools.as_langchain_tools(names=["video.ground"])
    res = tool.invoke({"video": path, "query": v.events[0]["caption"]})
    assert "moments" in (res if isinstance(res, str) else json.dumps(res))
    from vltools.core import Context
    from vltools.graphs.long_video_qa import build_graph

    vltools.call("video.index", {"collection": "faces_lvqa", "paths": [path], "create": True, "clip_seconds": 4})
    params = {"video": path, "resolved": str(Path(path).resolve()), "collection": "faces_lvqa", "clip_seconds": 4.0,
              "frames_per_clip": 4, "top_clips": 1, "labels": None, "clip": None, "llm": None, "mode": "mean"}
    ctx = Context(registry=vltools.registry())
    chunks = list(build_graph().stream({"question": "what happens?", "params": params},
                                       {"configurable": {"vltools_ctx": ctx}}, stream_mode="custom"))
    nodes = [c["node"] for c in chunks]
    assert list(dict.fromkeys(nodes)) == ["index", "describe", "retrieve", "ground", "answer"]
