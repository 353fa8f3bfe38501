"""``python -m vlm3r``: the vlm3r command (for launchers such as ``accelerate launch -m`` or ``torchrun -m``)."""

from vlm3r.cli.main import app

app(prog_name="vlm3r")
