"""Paper reproductions: one module per paper, each a config dataclass with `run()` and `plot()`."""
