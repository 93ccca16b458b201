"""MkDocs hooks: pages generated at build time.

* every tutorial, ``docs/tutorials/NN_name.py``, becomes ``tutorials/NN_name.md`` (see
  ``docs/tutorial_cells.py``); the script itself is published next to it for download;
* ``api/layers.md`` documents every public module of ``numnet/layers``, so a new layer
  family appears in the reference without editing the docs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_spec = importlib.util.spec_from_file_location(
    "tutorial_cells", Path(__file__).with_name("tutorial_cells.py"))
assert _spec is not None and _spec.loader is not None
tutorial_cells = importlib.util.module_from_spec(_spec)
sys.modules["tutorial_cells"] = tutorial_cells  # its dataclasses look their module up
_spec.loader.exec_module(tutorial_cells)


LAYER_ORDER = ("base", "dense", "activations")  # the contract first, then the common ones


def on_files(files: Files, config: Any) -> Files:
    tutorials = Path(config["docs_dir"]) / "tutorials"
    for path in sorted(tutorials.glob("[0-9][0-9]_*.py")):
        page = tutorial_cells.to_markdown(path, download=path.name)
        files.append(File.generated(config, f"tutorials/{path.stem}.md", content=page))
    files.append(File.generated(config, "api/layers.md", content=layers_page(config)))
    return files


def layers_page(config: Any) -> str:
    package = Path(config["config_file_path"]).parent / "numnet" / "layers"
    names = sorted((p.stem for p in package.glob("*.py") if not p.stem.startswith("_")),
                   key=lambda name: (LAYER_ORDER.index(name) if name in LAYER_ORDER
                                     else len(LAYER_ORDER), name))
    blocks = [f"::: numnet.layers.{name}" for name in names]
    return "# Layers\n\n" + "\n\n".join(blocks) + "\n"
