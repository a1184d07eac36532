"""Components: the kinds of thing an environment is made of.

`project.py` loads a project's own components (components/<name>/ with a
component.yaml and templates, no Python) and turns each instance under an
environment's `components:` into render units.
"""
