"""The stage machinery: what a stage is, the registry, staged outputs, shards, code deps, DVC."""
