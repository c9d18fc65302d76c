"""Every swappable model component, gathered from the registry dict at the end of each file.

    from foundry.model.modules import ATTENTION, NORMS, MLPS, FFNS, POSITIONS, REGISTRIES
    ATTENTION["gqa"](layer_cfg)          # constructor signatures: foundry/model/protocols.py

REGISTRIES maps each `model.*` key to its registry (`model.activation` names an MLP). To add a
component: write its file (subclassing its kind in protocols.py), end it with its registry
dict, and add a `with component_file(...)` block below.

A file that fails to import does not break the others: its error is kept in BROKEN, with the
names its registry would have held (read from the file's source), and a config that names one
of them gets that error as a one-line message (foundry.catalog). Everything else keeps working.
"""
import ast
import os

ATTENTION, NORMS, MLPS, FFNS, POSITIONS = {}, {}, {}, {}, {}
REGISTRIES = {"attention": ATTENTION, "norm": NORMS, "activation": MLPS, "ffn": FFNS, "position": POSITIONS}
BROKEN = {}         # file path -> "ErrorType: message" raised while importing it
BROKEN_NAMES = {}   # component name -> file path of the broken file that registers it


def registered_names(path: str) -> list[str]:
    """String keys of the top-level UPPERCASE dict literals in a file (its registries), unimported."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    return [key.value for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
            and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
            for key in node.value.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)]


class component_file:
    """Context manager around one component file's import: an exception is recorded, not raised."""

    def __init__(self, name: str):
        self.path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or not issubclass(kind, Exception):
            return False
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(self.path))))
        where = os.path.relpath(self.path, package_parent)  # foundry/model/modules/NAME.py
        BROKEN[where] = f"{kind.__name__}: {error}".splitlines()[0]
        for name in registered_names(self.path):
            BROKEN_NAMES.setdefault(name, where)
        return True


with component_file("gqa.py"):
    from foundry.model.modules import gqa
    ATTENTION.update(gqa.ATTENTION)
with component_file("mla.py"):
    from foundry.model.modules import mla
    ATTENTION.update(mla.ATTENTION)
with component_file("sliding_window.py"):
    from foundry.model.modules import sliding_window
    ATTENTION.update(sliding_window.ATTENTION)
with component_file("sparse.py"):
    from foundry.model.modules import sparse
    ATTENTION.update(sparse.ATTENTION)
with component_file("retention.py"):
    from foundry.model.modules import retention
    ATTENTION.update(retention.ATTENTION)
with component_file("ssm.py"):
    from foundry.model.modules import ssm
    ATTENTION.update(ssm.ATTENTION)
with component_file("routed.py"):
    from foundry.model.modules import routed
    ATTENTION.update(routed.ATTENTION)
with component_file("rmsnorm.py"):
    from foundry.model.modules import rmsnorm
    NORMS.update(rmsnorm.NORMS)
with component_file("layernorm.py"):
    from foundry.model.modules import layernorm
    NORMS.update(layernorm.NORMS)
with component_file("mlp.py"):
    from foundry.model.modules import mlp
    MLPS.update(mlp.MLPS)
with component_file("dense.py"):
    from foundry.model.modules import dense
    FFNS.update(dense.FFNS)
with component_file("moe.py"):
    from foundry.model.modules import moe
    FFNS.update(moe.FFNS)
with component_file("learned.py"):
    from foundry.model.modules import learned
    POSITIONS.update(learned.POSITIONS)
with component_file("rope.py"):
    from foundry.model.modules import rope
    POSITIONS.update(rope.POSITIONS)
with component_file("llama3_rope.py"):
    from foundry.model.modules import llama3_rope
    POSITIONS.update(llama3_rope.POSITIONS)
with component_file("alibi.py"):
    from foundry.model.modules import alibi
    POSITIONS.update(alibi.POSITIONS)
with component_file("no_position.py"):
    from foundry.model.modules import no_position
    POSITIONS.update(no_position.POSITIONS)
