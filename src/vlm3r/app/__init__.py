"""``vlm3r app``: a web page (gradio) to look at scenes, questions, reconstructions and answers in 3D."""
