"""ScanNet v2: raw scans (``.sens``, meshes with segments and aggregations, 2D instance masks) to the processed
layout (docs/design.md, data §1.1)."""
