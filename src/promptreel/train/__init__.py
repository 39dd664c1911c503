"""Training promptreel's own models: the shapes world, the model, the trainer."""
