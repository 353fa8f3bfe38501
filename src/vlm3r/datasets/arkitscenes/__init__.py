"""ARKitScenes (3DOD): annotated boxes, mesh, low-resolution frames with trajectory and intrinsics, to the
processed layout (docs/design.md, data §1.3), with instance ids and frame metadata the reference lacks."""
