"""Training engine: loop, checkpoints, schedules, distributed setup, metrics."""
