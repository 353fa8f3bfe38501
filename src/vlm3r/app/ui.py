"""The page of ``vlm3r app`` (gradio): three tabs, Scenes, Questions and Ask, each a 3D view (a GLB in gradio's
Model3D) beside frames and text. Every handler turns an error into a message in its tab (``ERROR_IDS``), never a
traceback or a dead page. What each view shows is computed by ``app.views`` and ``app.ask``; this module wires it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from vlm3r.app.ask import AskSession, Source
from vlm3r.app.catalog import Catalog
from vlm3r.app.views import ALL_TASKS, Shown, question_choices, run_table, show_question, show_scene, task_choices, \
    write_glb
from vlm3r.errors import Vlm3rError
from vlm3r.utils.images import IMAGE_SUFFIXES, list_images
from vlm3r.utils.video import VIDEO_SUFFIXES

VIEW_HEIGHT_PX = 560  # the 3D view's height on the page
CAMERA = (-120.0, 55.0, None)  # the 3D view's first camera: azimuth and polar angle in degrees (babylon.js), distance
WHITE = (1.0, 1.0, 1.0, 1.0)  # the 3D view's background (RGBA 0-1)
GALLERY_COLUMNS = 4
# Element ids the page's parts carry (what a browser test, or a person's user style, finds them by).
ERROR_IDS = {"scenes": "scene-error", "questions": "question-error", "ask": "ask-error"}
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # local fonts only: the page asks nothing of other servers
MONO_FONTS = ["ui-monospace", "monospace"]
NO_MODEL = ("No model is loaded: start the app with `--model DIR` (and `--base`, `--cut3r` for a LoRA release) to "
            "ask questions here.")


def error_text(exc: BaseException) -> str:
    """What a tab says when something fails: the error's own message (it names the file and field)."""
    return f"**Error:** {exc}"


def _guard(function, outputs: int):
    """``function``'s outputs, with an empty error message; on a package or file error, nothing changed but the
    message (``outputs`` of them before it)."""
    def handler(*args):
        try:
            return (*function(*args), "")
        except (Vlm3rError, OSError, ValueError) as exc:
            return (*(gr.update() for _ in range(outputs)), error_text(exc))
    return handler


def _shown(shown: Shown):
    return str(shown.glb) if shown.glb else None, shown.frames, shown.text


def upload_source(files: list[str] | None) -> Source | None:
    """Uploaded files as a source: one video, or images (in name order, as ``--images`` takes them)."""
    if not files:
        return None
    paths = [Path(f) for f in files]
    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_SUFFIXES:
        return paths[0]
    if all(p.suffix.lower() in IMAGE_SUFFIXES for p in paths):
        return tuple(list_images(paths))
    raise Vlm3rError(f"upload: one video ({', '.join(VIDEO_SUFFIXES)}) or images ({', '.join(IMAGE_SUFFIXES)}), "
                     f"got {', '.join(p.name for p in paths)}")


def page_theme() -> gr.themes.Base:
    """gradio's default look with local fonts (its default fetches them from Google's servers)."""
    return gr.themes.Default(font=FONTS, font_mono=MONO_FONTS)


def build_page(catalog: Catalog, workdir: Path, session: AskSession | None = None) -> gr.Blocks:
    """The page for what ``catalog`` holds; ``session``: the loaded model for the Ask tab (None: no model)."""
    first_scene = next(iter(catalog.scenes), None)
    initial, initial_error = Shown(), ""
    if first_scene is not None:
        try:
            initial = show_scene(catalog, first_scene, workdir)
        except (Vlm3rError, OSError, ValueError) as exc:
            initial_error = error_text(exc)

    with gr.Blocks(title="vlm3r", analytics_enabled=False) as page:
        gr.Markdown("## vlm3r: scenes, questions and answers in 3D")
        gr.Markdown("\n".join(f"- **Could not read:** {p}" for p in catalog.problems), elem_id="problems",
                    visible=bool(catalog.problems))
        with gr.Tabs():
            with gr.Tab("Scenes", id="scenes"):
                scene = gr.Dropdown(list(catalog.scenes), value=first_scene, label="Scene", elem_id="scene-pick")
                scene_error = gr.Markdown(initial_error, elem_id=ERROR_IDS["scenes"])
                with gr.Row():
                    scene_view = gr.Model3D(_shown(initial)[0], label="3D view", elem_id="scene-3d",
                                            height=VIEW_HEIGHT_PX, clear_color=WHITE, camera_position=CAMERA,
                                            scale=3)
                    with gr.Column(scale=2):
                        scene_text = gr.Markdown(initial.text, elem_id="scene-info")
                        scene_frames = gr.Gallery(initial.frames, label="Sampled frames and their 2D boxes",
                                                  columns=GALLERY_COLUMNS, elem_id="scene-frames")
                scene.change(_guard(lambda label: _shown(show_scene(catalog, label, workdir)), 3), scene,
                             [scene_view, scene_frames, scene_text, scene_error])

            with gr.Tab("Questions", id="questions"):
                with gr.Row():
                    task = gr.Dropdown(task_choices(catalog), value=ALL_TASKS, label="Task", elem_id="task-pick",
                                       scale=1)
                    question = gr.Dropdown(question_choices(catalog), value=None, label="Question",
                                           elem_id="question-pick", scale=4)
                question_error = gr.Markdown("" if catalog.questions else "No questions: start the app with "
                                             "`--qa FILE` (a `vlm3r qa generate` file) or `--run DIR`.",
                                             elem_id=ERROR_IDS["questions"])
                with gr.Row():
                    question_view = gr.Model3D(label="3D view with the question's evidence", elem_id="question-3d",
                                               height=VIEW_HEIGHT_PX, clear_color=WHITE, camera_position=CAMERA,
                                               scale=3)
                    with gr.Column(scale=2):
                        question_text = gr.Markdown(elem_id="question-info")
                        question_frames = gr.Gallery(label="Its frames", columns=GALLERY_COLUMNS,
                                                     elem_id="question-frames")
                gr.Markdown(run_table(catalog), elem_id="run-table", visible=bool(catalog.runs))
                task.change(lambda t: gr.update(choices=question_choices(catalog, t), value=None), task, question)

                def pick(position):
                    if position is None:
                        return None, [], ""
                    return _shown(show_question(catalog, int(position), workdir))

                question.change(_guard(pick, 3), question, [question_view, question_frames, question_text,
                                                            question_error])

            with gr.Tab("Ask", id="ask"):
                _ask_tab(catalog, workdir, session)
    return page


def _ask_tab(catalog: Catalog, workdir: Path, session: AskSession | None) -> None:
    if session is None:
        gr.Markdown(NO_MODEL, elem_id=ERROR_IDS["ask"])
        return
    with gr.Row():
        video = gr.Dropdown(list(catalog.videos), value=next(iter(catalog.videos), None),
                            label="Video (from the --data folders)", elem_id="ask-video", scale=2)
        upload = gr.File(file_count="multiple", file_types=[*VIDEO_SUFFIXES, *IMAGE_SUFFIXES],
                         label="or upload a video, or images (a sequence, in name order)", elem_id="ask-upload",
                         scale=2)
    question = gr.Textbox(label="Question", elem_id="ask-question", lines=2)
    with gr.Row():
        ask = gr.Button("Ask", variant="primary", elem_id="ask-button")
        rebuild = gr.Button("Reconstruct with CUT3R", elem_id="reconstruct-button",
                            interactive=session.cut3r_path is not None)
    answer = gr.Textbox(label="Answer", elem_id="ask-answer", interactive=False)
    error = gr.Markdown(elem_id=ERROR_IDS["ask"])
    view = gr.Model3D(label="CUT3R's reconstruction (points, camera path; metres, not calibrated)",
                      elem_id="ask-3d", height=VIEW_HEIGHT_PX, clear_color=WHITE, camera_position=CAMERA)

    def source_of(label, files) -> Source:
        uploaded = upload_source(files)
        if uploaded is not None:
            return uploaded
        if label not in catalog.videos:
            raise Vlm3rError("video: choose a video or upload one")
        return catalog.videos[label]

    async def answer_stream(label, files, text):
        try:
            source = source_of(label, files)
            yield "", ""
            async for so_far in session.stream(source, text):
                yield so_far, ""
        except (Vlm3rError, OSError, ValueError) as exc:
            yield gr.update(), error_text(exc)

    async def reconstruct(label, files):
        try:
            source = source_of(label, files)
            payload = await session.reconstruct(source, source.stem if isinstance(source, Path) else "images")
            return str(write_glb(payload, workdir)), ""
        except (Vlm3rError, OSError, ValueError) as exc:
            return gr.update(), error_text(exc)

    ask.click(answer_stream, [video, upload, question], [answer, error])
    question.submit(answer_stream, [video, upload, question], [answer, error])
    rebuild.click(reconstruct, [video, upload], [view, error])
