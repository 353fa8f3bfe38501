"""What a run ran, in its folder's ``run.json``: the command, the model's files with their checksums, dtype,
device, frames, the config fields that change the answers and the versions. A run folder holds predictions of
one setting only: a rerun with other settings into it is refused."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from vlm3r.errors import EvalRunError
from vlm3r.utils.fileio import atomic_write_text, read_json, settled, sha256_of

RUN_FILE = "run.json"
# Settings that change the answers: a run folder holds predictions of one setting only.
IDENTITY_FIELDS = ("bench", "qa_sha256", "model_files", "dtype", "frames", "max_new_tokens", "prompt", "config")


def file_checksums(path: Path | None, known: dict | None = None, clock=time.time) -> dict[str, dict]:
    """``{relative path: {size, mtime_ns, ctime_ns, inode, sha256, settled}}`` of a file or every file under a
    folder. A checksum in ``known`` is reused for a file whose signature is unchanged and whose times were settled
    when it was read (``utils.fileio.settled``: a resumed run of a 7B model does not read 15 GB again, and a file
    replaced by another of the same size and modification time is read anew); ``clock``: the wall clock."""
    if path is None:
        return {}
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = {}
    for file in files:
        name = file.name if file == path else str(file.relative_to(path))
        stat = file.stat()
        signature = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
                     "inode": stat.st_ino}
        previous = (known or {}).get(name) or {}
        if previous.get("settled") and all(previous.get(k) == v for k, v in signature.items()):
            out[name] = previous
            continue
        read_at = clock()
        out[name] = {**signature, "sha256": sha256_of(file), "settled": settled(stat, read_at)}
    return out


def _versions() -> dict[str, str]:
    import torch
    import transformers

    from vlm3r import __version__

    return {"vlm3r": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def run_record(options, model, qa_sha256: str, world: int, known: dict | None) -> dict:
    """run.json: every setting and file that decides the answers. ``options``: the run's ``RunOptions`` (with the
    frames the model samples), ``model``: the loaded ``Vlm3rModel``, ``known``: the folder's earlier record (its
    checksums are reused for unchanged files)."""
    files = model.files
    previous = (known or {}).get("model_files") or {}
    config = model.config

    def part(name: str, path: Path | None) -> dict | None:
        if path is None:
            return None
        return {"path": str(path), "files": file_checksums(path, (previous.get(name) or {}).get("files"))}

    return {
        "command": sys.argv, "bench": options.bench, "qa": str(options.qa), "qa_sha256": qa_sha256,
        "videos": str(options.videos), "limit": options.limit, "processes": world,
        "model_files": {"model": part("model", files.model),
                        "base": part("base", files.base if files.base != files.model else None),
                        "cut3r": part("cut3r", files.cut3r)},
        "dtype": options.dtype, "device": options.device, "frames": options.frames, "batch_size": options.batch_size,
        "max_new_tokens": options.max_new_tokens, "prompt": options.prompt,
        "config": {"fusion": config.fusion, "spatial_tower_select_feature": config.spatial_tower_select_feature,
                   "pool_mode": config.pool_mode, "cut3r_image_size": config.cut3r_image_size,
                   "fusion_heads": config.fusion_heads, "vision": config.to_dict()["vision"],
                   "llm": config.to_dict()["llm"], "cut3r": config.to_dict()["cut3r"]},
        "versions": _versions(), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _identity(record: dict) -> dict:
    out = {k: record.get(k) for k in IDENTITY_FIELDS}
    out["model_files"] = {part: None if value is None else {name: f["sha256"] for name, f in value["files"].items()}
                          for part, value in (record.get("model_files") or {}).items()}
    return out


def check_same_run(previous: dict, current: dict, path: Path) -> None:
    """Refuse (``EvalRunError`` naming ``path`` and the settings) a record whose answers would differ."""
    old, new = _identity(previous), _identity(current)
    changed = [k for k in IDENTITY_FIELDS if old.get(k) != new.get(k)]
    if changed:
        raise EvalRunError(f"{path}: this folder holds predictions made with other settings ({', '.join(changed)} "
                           "differ): use another --out, or remove the folder to start again")


def record_run(run_dir: Path, options, model, qa_sha256: str, world: int) -> None:
    """Write ``run_dir``'s run.json (``run_record``), after checking it against the record already there."""
    path = run_dir / RUN_FILE
    previous = read_json(path, EvalRunError, dict, "the earlier run's record") if path.is_file() else None
    record = run_record(options, model, qa_sha256, world, previous)
    if previous is not None:
        check_same_run(previous, record, path)
    atomic_write_text(path, json.dumps(record, indent=1))
