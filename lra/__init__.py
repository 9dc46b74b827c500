"""Long Range Arena: tasks, data loaders and models (built in later issues)."""
