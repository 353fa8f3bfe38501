"""``vlm3r serve`` on the tiny model, started on a free loopback port and spoken to with real clients (the openai
package and httpx): answers equal ``vlm3r ask``, follow-ups come from the cache, streams join to the same text,
bad inputs get their 4xx, concurrent requests all answer, the server stops cleanly."""

import asyncio
import base64
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch
from helpers import save_tiny_model

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from vlm3r.model.pipeline import Vlm3rPipeline  # noqa: E402
from vlm3r.serve.server import ServeOptions, build_app  # noqa: E402

KEY = "sekrit"
QUESTIONS = ["How many chairs are in this room?", "How far is the sofa from the tv (in meters)?",
             "Which is closer to the bed, the lamp or the door?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, pipeline, options):
        self.app, self.engine, self.uploads = build_app(pipeline, options, "tiny")
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=options.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{options.port}"

    def stop(self) -> float:
        start = time.monotonic()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        return time.monotonic() - start


@pytest.fixture(scope="module")
def setup(qa_synthetic, tmp_path_factory):
    folder = save_tiny_model(tmp_path_factory.mktemp("model") / "tiny")
    videos = sorted((qa_synthetic / "videos").rglob("*.mp4"))[:3]
    reference = Vlm3rPipeline.from_pretrained(folder, dtype=torch.float32)
    expected = {(v, q): reference.ask(v, q) for v in videos for q in QUESTIONS}
    served = Vlm3rPipeline.from_pretrained(folder, dtype=torch.float32)
    options = ServeOptions(port=free_port(), video_roots=[qa_synthetic], max_upload_mb=1, cache_mb=64, api_key=KEY)
    server = RunningServer(served, options)
    yield server, videos, expected, qa_synthetic
    if server.thread.is_alive():
        server.stop()


def message(video_url: str, question: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": video_url}},
                                         {"type": "text", "text": question}]}]


def health(server) -> dict:
    return httpx.get(f"{server.url}/health", headers={"Authorization": f"Bearer {KEY}"}).json()


def test_answers_equal_ask_and_follow_ups_come_from_the_cache(setup):
    server, videos, expected, _ = setup
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    video = videos[0]
    first = client.chat.completions.create(model="tiny", messages=message(f"file://{video}", QUESTIONS[0]))
    assert first.choices[0].message.content == expected[(video, QUESTIONS[0])]
    assert first.object == "chat.completion" and first.choices[0].finish_reason in ("stop", "length")
    assert first.usage.completion_tokens >= 1 and first.usage.total_tokens == (first.usage.prompt_tokens
                                                                                + first.usage.completion_tokens)
    before = health(server)
    second = client.chat.completions.create(model="tiny", messages=message(f"file://{video}", QUESTIONS[1]))
    assert second.choices[0].message.content == expected[(video, QUESTIONS[1])]
    after = health(server)
    assert (after["encodings"], after["prefills"]) == (before["encodings"], before["prefills"])  # no re-encode
    assert after["cached_prefixes"] >= 1


def test_streams_join_to_the_same_text(setup):
    server, videos, expected, _ = setup
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    for question in QUESTIONS:
        stream = client.chat.completions.create(model="tiny", messages=message(f"file://{videos[1]}", question),
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected[(videos[1], question)]
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_uploads_by_id_and_data_url(setup):
    server, videos, expected, _ = setup
    data = videos[2].read_bytes()
    headers = {"Authorization": f"Bearer {KEY}"}
    uploaded = httpx.post(f"{server.url}/v1/videos", content=data, headers={**headers, "Content-Type": "video/mp4"})
    assert uploaded.status_code == 200 and uploaded.json()["bytes"] == len(data)
    video_id = uploaded.json()["id"]
    again = httpx.post(f"{server.url}/v1/videos", content=data, headers={**headers, "Content-Type": "video/mp4"})
    assert again.json()["id"] == video_id  # kept by content: one file
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    by_id = client.chat.completions.create(model="tiny", messages=message(video_id, QUESTIONS[2]))
    assert by_id.choices[0].message.content == expected[(videos[2], QUESTIONS[2])]
    url = "data:video/mp4;base64," + base64.b64encode(data).decode()
    inline = client.chat.completions.create(model="tiny", messages=message(url, QUESTIONS[0]))
    assert inline.choices[0].message.content == expected[(videos[2], QUESTIONS[0])]


def test_bad_requests_get_their_status(setup, tmp_path):
    server, videos, _, root = setup
    headers = {"Authorization": f"Bearer {KEY}"}
    chat = f"{server.url}/v1/chat/completions"

    def ask(body, **kw):
        return httpx.post(chat, json=body, headers=kw.pop("headers", headers), **kw)

    good = {"messages": message(f"file://{videos[0]}", "q")}
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(videos[0].read_bytes())
    link = root / "link-out.mp4"
    link.symlink_to(outside)
    try:
        cases = [
            (httpx.post(chat, json=good), 401, "API key"),
            (ask(good, headers={"Authorization": "Bearer wrong"}), 401, "API key"),
            (httpx.get(f"{server.url}/health"), 401, "API key"),
            (ask({"messages": message(f"file://{outside}", "q")}), 403, "outside the allowed video roots"),
            (ask({"messages": message(f"file://{root}/../{outside.parent.name}/outside.mp4", "q")}), 403,
             "outside the allowed video roots"),
            (ask({"messages": message(f"file://{link}", "q")}), 403, "outside the allowed video roots"),
            (ask({"messages": message(f"file://{root}/none.mp4", "q")}), 404, "no such file"),
            (ask({"messages": message("video-" + "0" * 32, "q")}), 404, "no such uploaded video"),
            (ask({"messages": message("https://example.com/v.mp4", "q")}), 400, "scheme is not served"),
            (ask({"messages": message("data:text/plain;base64,aGk=", "q")}), 400, "not video/*"),
            (ask({"messages": message("data:video/mp4;base64," + base64.b64encode(b"junk" * 10).decode(), "q")}),
             400, "not a readable video"),
            (httpx.post(chat, content=b"{not json", headers=headers), 400, "not valid JSON"),
            (ask({"messages": [{"role": "user", "content": "no video here"}]}), 400, "exactly one video_url"),
            (ask({"messages": [{"role": "user", "content": message(f"file://{videos[0]}", "q")[0]["content"] * 2}]}),
             400, "exactly one video_url part, got 2"),
            (ask({**good, "temperature": 0.7}), 400, "only greedy decoding"),
            (ask({**good, "max_tokens": 0}), 400, "max_tokens"),
            (ask({"messages": [*good["messages"], {"role": "assistant", "content": "x"}]}), 400, "one user turn"),
            (ask({**good, "model": "gpt-4o"}), 404, "this server serves 'tiny'"),
            (httpx.post(f"{server.url}/v1/videos", content=b"x" * (2 << 20),
                        headers={**headers, "Content-Type": "video/mp4"}), 413, "more than this server accepts"),
            (httpx.post(f"{server.url}/v1/videos", content=b"not a video at all",
                        headers={**headers, "Content-Type": "video/mp4"}), 400, "not a readable video"),
            (httpx.post(f"{server.url}/v1/videos", content=b"x", headers={**headers, "Content-Type": "text/plain"}),
             415, "send the video's bytes as video/*"),
        ]
    finally:
        link.unlink()
    for response, status, text in cases:
        assert response.status_code == status, (response.status_code, response.text)
        error = response.json()["error"]
        assert text in error["message"] and error["code"] == status and "Traceback" not in response.text
    assert health(server)["status"] == "ok"  # none of it hurt the server


def test_a_failing_video_does_not_poison_the_cache(setup, monkeypatch):
    from vlm3r.model import pipeline as pipeline_module
    from vlm3r.utils.video import VideoError

    server, videos, expected, _ = setup
    bad = videos[2].resolve()
    original = pipeline_module.read_video_frames
    broken = {"on": True}

    def flaky(path, num_frames):
        if Path(path) == bad and broken["on"]:
            raise VideoError(f"{path}: frame 3 cannot be decoded")
        return original(path, num_frames)

    monkeypatch.setattr(pipeline_module, "read_video_frames", flaky)
    server.engine.pipeline.caches = type(server.engine.pipeline.caches)(8, 2, 64 << 20)  # cold, for this video
    headers = {"Authorization": f"Bearer {KEY}"}
    chat = f"{server.url}/v1/chat/completions"
    for _ in range(2):
        response = httpx.post(chat, json={"messages": message(f"file://{bad}", QUESTIONS[0])}, headers=headers)
        assert response.status_code == 422 and "frame 3 cannot be decoded" in response.json()["error"]["message"]
    good = httpx.post(chat, json={"messages": message(f"file://{videos[0]}", QUESTIONS[0])}, headers=headers)
    assert good.json()["choices"][0]["message"]["content"] == expected[(videos[0], QUESTIONS[0])]
    broken["on"] = False  # the file is readable again: nothing of the failures was kept
    fixed = httpx.post(chat, json={"messages": message(f"file://{bad}", QUESTIONS[0])}, headers=headers)
    assert fixed.json()["choices"][0]["message"]["content"] == expected[(videos[2], QUESTIONS[0])]


def test_twenty_concurrent_requests_over_three_videos(setup):
    server, videos, expected, _ = setup
    pairs = [(videos[k % 3], QUESTIONS[k % len(QUESTIONS)]) for k in range(20)]

    async def run():
        async with httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as client:
            return await asyncio.gather(*(client.post(f"{server.url}/v1/chat/completions",
                                                      json={"messages": message(f"file://{v}", q)})
                                          for v, q in pairs))

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 20
    assert [r.json()["choices"][0]["message"]["content"] for r in responses] == [expected[p] for p in pairs]


def test_the_server_stops_cleanly(setup):
    server, _, _, _ = setup
    took = server.stop()
    assert not server.thread.is_alive() and took < 10
    server.engine.close()
    assert not server.engine._thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)
