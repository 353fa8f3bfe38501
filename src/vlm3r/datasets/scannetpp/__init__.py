"""ScanNet++: annotated boxes and segments on the aligned mesh, iPhone video, depth and poses, to the processed
layout (docs/design.md, data §1.2), with instance ids and frame metadata the reference lacks."""
