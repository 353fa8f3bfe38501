"""ScanNet v2: raw scans (``.sens``, meshes with segments and aggregations, 2D instance masks) to the processed
layout (reference-data.md §1.1)."""
