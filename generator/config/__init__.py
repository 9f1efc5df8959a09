"""The config: its typed model, the loader that fills it, and the rules it must keep."""
