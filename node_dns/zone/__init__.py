"""Zone layer: facts in, immutable snapshots out. Nothing here does I/O."""
