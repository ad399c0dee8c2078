"""Storage: where a run's files live and how they survive.

Contract: `files` reads and writes local folders and buckets (gs://) with
atomic replacement; `checkpoints` saves and verifies orbax steps, each with
its own record (`records`: step, checksums, config, image size), under a
path `checkpoint_paths` has checked orbax can write and restore; `workdirs`
ties a workdir to one config (config.json, overwrites, the end of a run);
`locks` lets one process at a time use it; `provenance` records the code
that trained and evaluated. Storage imports no research code (no models,
objectives or maths).
"""
