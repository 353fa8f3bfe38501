"""Image sequences as input (the reference's image demo, spec reference-3dqa.md §3): files listed in file-name order,
the prompt and token layout by hand, CUT3R over the images as one sequence, the context limit, ``ask --images`` and
``--as-video``, and every bad input named."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vlm3r.cli.main import app
from vlm3r.model.pipeline import AskRequest, PromptTooLongError, Vlm3rPipeline
from vlm3r.model.prompt import chat_prompt, encode, render
from vlm3r.model.video import siglip_pixels
from vlm3r.utils.images import ImageError, list_images, read_images

QUESTION = "How many white chairs are there?"


def write_images(folder, names, seed=0, size=(40, 30)):
    """Distinct random RGB images under ``names`` (PNG, lossless: the pixels read back are these)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = {}
    for name in names:
        pixels[name] = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(folder / name)
    return pixels


@pytest.fixture(scope="module")
def pipeline(tiny_model):
    return Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32)


def test_a_folder_is_read_in_file_name_order_and_listed_files_as_given(tmp_path):
    write_images(tmp_path / "seq", ["frame_10.png", "frame_2.png", "b.JPG", "a.webp"])
    (tmp_path / "seq" / "notes.txt").write_text("not an image")
    # sorted by name as strings, as the reference sorts a folder: "frame_10" before "frame_2"
    assert [p.name for p in list_images([tmp_path / "seq"])] == ["a.webp", "b.JPG", "frame_10.png", "frame_2.png"]
    assert [p.name for p in list_images([str(tmp_path / "seq" / "frame_*.png")])] == ["frame_10.png", "frame_2.png"]
    listed = [tmp_path / "seq" / "frame_2.png", tmp_path / "seq" / "a.webp"]
    assert list_images(listed) == listed


def test_bad_image_inputs_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match=rf"^{tmp_path / 'empty'}: no images in the folder \(.png, .jpg"):
        list_images([tmp_path / "empty"])
    with pytest.raises(ImageError, match=rf"^{tmp_path / 'gone'}: no such file or folder$"):
        list_images([tmp_path / "gone"])
    with pytest.raises(ImageError, match=r"no image matches the pattern"):
        list_images([str(tmp_path / "*.png")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ImageError, match=rf"^{tmp_path / 'notes.txt'}: not an image file name"):
        list_images([tmp_path / "notes.txt"])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageError, match=rf"^{tmp_path / 'broken.png'}: not a readable image"):
        read_images([tmp_path / "broken.png"])


def reference_ids(tokenizer, count: int, question: str) -> list[int]:
    """image_demo.py's prompt ("<image>\\n" per image, then the question, in qwen_1_5) tokenized as the reference's
    tokenizer_image_token does: split at <image>, each chunk tokenized, -200 between."""
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" + "<image>\n" * count
              + question + "<|im_end|>\n<|im_start|>assistant\n")
    chunks = [tokenizer(chunk, add_special_tokens=False).input_ids for chunk in prompt.split("<image>")]
    ids = chunks[0]
    for chunk in chunks[1:]:
        ids = ids + [-200] + chunk
    return ids


def test_prompt_and_token_layout_of_three_images(pipeline, tmp_path):
    assert pipeline.images_prompt_ids(3, QUESTION) == reference_ids(pipeline.tokenizer, 3, QUESTION)
    pixels = siglip_pixels(list(write_images(tmp_path, ["a.png", "b.png", "c.png"]).values()), 84)
    model = pipeline.model
    with torch.inference_mode():
        blocks = model.image_embeddings(pixels)
        # by hand: SigLIP per image, CUT3R over the three as one sequence, fusion, projector, no pooling
        fused = model.mm_projector(model.fuse(model.vision_features(pixels), model.spatial_features(pixels)))
    g = model.config.grid  # 6 for the tiny tower: 84 / 14
    assert [tuple(b.shape) for b in blocks] == [(g * (g + 1), model.config.llm.hidden_size)] * 3  # 42 rows each
    for image, block in enumerate(blocks):
        for row in range(g):
            start = row * (g + 1)
            assert torch.equal(block[start:start + g], fused[image, row * g:(row + 1) * g])  # the row's g tokens
            assert torch.equal(block[start + g], model.image_newline)  # then the newline
    # the prompt with each <image> replaced: 3 x 42 embeddings where the 3 ids were
    assert pipeline.images_length(3, QUESTION) == len(reference_ids(pipeline.tokenizer, 3, QUESTION)) - 3 + 3 * 42


def test_cut3r_reads_the_images_in_order_as_one_sequence(pipeline, tmp_path):
    """CUT3R's state carries from image to image: image b after image a is not image b first (or alone); first in a
    sequence, it is what it is alone (up to the float rounding of a batch of two against one)."""
    frames = list(write_images(tmp_path, ["a.png", "b.png"]).values())
    model = pipeline.model
    with torch.inference_mode():
        a_then_b = model.image_embeddings(siglip_pixels(frames, 84))
        b_then_a = model.image_embeddings(siglip_pixels(frames[::-1], 84))
        b_alone = model.image_embeddings(siglip_pixels(frames[1:], 84))
    torch.testing.assert_close(b_then_a[0], b_alone[0])
    assert not torch.allclose(a_then_b[1], b_alone[0], atol=1e-3)


def test_ask_images_answers_in_the_reference_layout_and_as_video(pipeline, tiny_model, tmp_path):
    write_images(tmp_path / "seq", [f"frame_{k:02d}.png" for k in range(10)], seed=3)
    paths = sorted((tmp_path / "seq").iterdir())
    frames = read_images(paths)
    model = pipeline.model
    with torch.inference_mode():
        visuals = model.image_embeddings(siglip_pixels(frames, 84))
    expected = pipeline.tokenizer.decode(model.generate([reference_ids(pipeline.tokenizer, 10, QUESTION)], visuals,
                                                        8, pipeline.eos, pipeline.pad)[0],
                                         skip_special_tokens=True).strip()
    assert pipeline.ask_images([tmp_path / "seq"], QUESTION, 8) == expected
    # as a video: 4 of the 10 spread by linspace (0, 3, 6, 9), pooled, one <image>, the model's own prompt
    chosen = [frames[k] for k in (0, 3, 6, 9)]
    with torch.inference_mode():
        visual = model.visual_embeddings(siglip_pixels(chosen, 84))
    ids = encode(pipeline.tokenizer, chat_prompt(*pipeline.template.user_turn(QUESTION)))
    assert render(chat_prompt(*pipeline.template.user_turn(QUESTION))).count("<image>") == 1
    as_video = pipeline.tokenizer.decode(model.generate([ids], [visual], 8, pipeline.eos, pipeline.pad)[0],
                                         skip_special_tokens=True).strip()
    assert pipeline.ask_images([tmp_path / "seq"], QUESTION, 8, as_video=True) == as_video
    # the command gives the pipeline's answers
    result = CliRunner().invoke(app, ["ask", "--model", str(tiny_model), "--dtype", "fp32", "--max-new-tokens", "8",
                                      "--images", str(tmp_path / "seq"), QUESTION])
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"{expected}\n" if expected else "")


def test_too_many_images_say_how_many_fit(pipeline, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(120):
        (folder / f"{k:03d}.png").write_bytes(b"")  # refused before any image is read
    # by brute force: the most images whose prompt and 16 new tokens fit the tiny model's 4096 positions
    fit = max(n for n in range(1, 120) if pipeline.images_length(n, QUESTION) + 16 <= 4096)
    with pytest.raises(PromptTooLongError, match=rf"^120 images do not fit: .* at most {fit} images fit "):
        pipeline.ask_images([folder], QUESTION, 16)


@pytest.mark.parametrize("arguments, images, as_video, message", [
    (["room.mp4", "q"], ["seq"], False, r"with --images, give only the question \(got 2 arguments"),
    (["q"], None, False, r"give a VIDEO and a QUESTION, or --images and a QUESTION \(got 1 arguments"),
    (["room.mp4", "q"], None, True, r"--as-video: it treats --images as a video's frames; give --images"),
])
def test_ask_arguments_are_checked_before_loading(arguments, images, as_video, message):
    with pytest.raises(ValueError, match=message):
        AskRequest.from_arguments(arguments, images, as_video)


def write_phone_video(path, frames: list[np.ndarray], fps: int = 10) -> None:
    """An MP4 whose track header carries a phone's display matrix: shown turned a quarter clockwise, as an iPhone
    held upright records (its sensor's frames are landscape). PyAV writes no display matrix, so the matrix of the
    track header box ('tkhd') is set in the file's bytes."""
    import struct

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"qp": "0"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv444p"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    assert data[box + 4] == 0  # version 0: 4 times/ids of 4 bytes, then reserved, layer, group, volume, reserved
    matrix = box + 8 + 20 + 8 + 2 + 2 + 2 + 2
    one = 1 << 16
    data[matrix:matrix + 36] = struct.pack(">9i", 0, one, 0, -one, 0, 0, 0, 0, 1 << 30)  # a quarter turn clockwise
    path.write_bytes(bytes(data))


def test_a_phone_video_is_read_upright_unless_asked_as_stored(pipeline, tiny_model, tmp_path):
    from vlm3r.utils.video import read_video_frames

    frames = []
    for k in range(6):  # landscape 64 x 32, white on the left, a frame number in grey
        rgb = np.zeros((32, 64, 3), dtype=np.uint8)
        rgb[:, :16] = 255
        rgb[:, 40:44] = 40 * k
        frames.append(rgb)
    video = tmp_path / "IMG_0001.mp4"
    write_phone_video(video, frames)
    stored, indices, _ = read_video_frames(video, 4, upright=False)
    upright, same_indices, _ = read_video_frames(video, 4)
    assert stored.shape == (4, 32, 64, 3) and upright.shape == (4, 64, 32, 3)
    assert np.array_equal(indices, same_indices)
    for flat, turned in zip(stored, upright):
        assert np.array_equal(turned, np.rot90(flat, k=-1))  # a quarter turn clockwise
    # turned clockwise, the left edge is at the top: the white band is the top 16 rows
    assert upright[:, :16].min() > 200 and upright[:, 16:, :, :].mean() < 100
    as_stored = Vlm3rPipeline.from_pretrained(tiny_model, dtype=torch.float32, upright=False)
    model = pipeline.model
    with torch.inference_mode():
        assert torch.equal(as_stored.video_embeddings(video), model.visual_embeddings(siglip_pixels(stored, 84)))
        assert torch.equal(pipeline.video_embeddings(video), model.visual_embeddings(siglip_pixels(upright, 84)))


def test_eval_run_answers_questions_about_image_sequences_as_ask_does(pipeline, tiny_model, tmp_path):
    """Question files may name ``images`` (relative to the root) where they name a video: the run answers each
    question as ``ask --images`` does, the images encoded once per sequence; a missing image stops the run first."""
    from vlm3r.qa.prompts import question_text
    from vlm3r.qa.record import QARecord, read_qa_jsonl, write_qa_jsonl

    write_images(tmp_path / "root" / "walk", ["f0.png", "f1.png", "f2.png"], seed=5)
    write_images(tmp_path / "root" / "desk", ["a.png", "b.png"], seed=6)

    def record(k, images, question):
        return QARecord(k, "synthetic", "walk", "", "object_counting", question, [], 2, None, images=images)
    records = [record(0, ["walk/f0.png", "walk/f1.png", "walk/f2.png"], "How many chair(s) are in this room?"),
               record(1, ["desk/b.png", "desk/a.png"], "How many lamp(s) are in this room?"),
               record(2, ["walk/f0.png", "walk/f1.png", "walk/f2.png"], "How many bed(s) are in this room?")]
    qa = tmp_path / "qa.jsonl"
    write_qa_jsonl(qa, records)
    assert [r.images for r in read_qa_jsonl(qa)] == [r.images for r in records]  # the field round-trips
    args = ["eval", "run", "--model", str(tiny_model), "--bench", "vsibench", "--qa", str(qa), "--videos",
            str(tmp_path / "root"), "--out", str(tmp_path / "run"), "--dtype", "fp32", "--batch-size", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    predictions = {row["id"]: row["prediction"] for row in map(json.loads, lines)}
    for r in records:  # the images in the record's order, as listed files keep theirs
        assert predictions[r.id] == pipeline.ask_images([tmp_path / "root" / i for i in r.images], question_text(r))
    (tmp_path / "root" / "desk" / "a.png").unlink()
    failed = CliRunner().invoke(app, [*args[:-6], "--out", str(tmp_path / "run2"), "--dtype", "fp32"])
    assert failed.exit_code == 1
    assert (f"1 of 2 videos cannot be read: {tmp_path / 'root' / 'desk' / 'a.png'}: no such file or folder "
            "(1 questions)") in " ".join(failed.stderr.split())


def test_an_image_sequence_is_encoded_once_and_streams_what_it_answers(pipeline, tmp_path):
    """An image sequence is a source like a video: encoded and prefilled once for all its questions (the caches
    know it by its files' digests, in order), streamed answers join to the answer, usage counts its 2 x 42
    embeddings."""
    write_images(tmp_path, ["a.png", "b.png"], seed=9)
    paths = (tmp_path / "a.png", tmp_path / "b.png")
    before = pipeline.stats()
    answers = pipeline.answer_video(paths, [QUESTION, "Where is the lamp?"], 8, batch_size=2)
    again = pipeline.answer_video(paths, [QUESTION], 8)
    after = pipeline.stats()
    assert (after["encodings"] - before["encodings"], after["prefills"] - before["prefills"]) == (1, 1)
    assert again[0].text == answers[0].text
    assert answers[0].prompt_tokens == pipeline.images_length(2, QUESTION)
    pieces = pipeline.stream_video(paths, QUESTION, 8)
    streamed = []
    try:
        while True:
            streamed.append(next(pieces))
    except StopIteration as end:
        assert end.value.text == answers[0].text
    assert "".join(streamed) == answers[0].text
    assert pipeline.answer_video(paths[::-1], [QUESTION], 8)[0].prompt_tokens == answers[0].prompt_tokens
    assert pipeline.stats()["encodings"] == after["encodings"] + 1  # the other order is another sequence


def test_images_of_different_sizes_are_each_squashed_to_the_towers_size(pipeline, tmp_path):
    """As the reference's processor does: each image resized on its own to the SigLIP size, whatever its own."""
    small = write_images(tmp_path, ["a.png"], seed=1, size=(40, 30))["a.png"]
    large = write_images(tmp_path, ["b.png"], seed=2, size=(96, 64))["b.png"]
    pixels = pipeline.image_pixels([tmp_path / "a.png", tmp_path / "b.png"])
    assert torch.equal(pixels, torch.cat([siglip_pixels([small], 84), siglip_pixels([large], 84)]))
    assert pipeline.ask_images([tmp_path], QUESTION, 4) == pipeline.answer_video((tmp_path / "a.png",
                                                                                  tmp_path / "b.png"),
                                                                                 [QUESTION], 4)[0].text
