"""The demo platform that `tabkeeper serve --demo` (and `make run`) serves: a catalog with
the shapes of every kind of platform in the spec (demo/catalog.yaml) and organizations in
every subscription state (demo/story.py), seeded through the real services
(demo/seed.py). See docs/demo.md.
"""

from tabkeeper.demo.seed import DemoEntry, DemoReport, demo_lines, seed_demo

__all__ = ["DemoEntry", "DemoReport", "demo_lines", "seed_demo"]
