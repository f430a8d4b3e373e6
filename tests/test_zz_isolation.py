"""torchao and executorch never load in the pytest process (runs last: pytest orders files by
name)."""

import sys


def test_torchao_was_never_imported_in_process() -> None:
    leaked = sorted(m for m in sys.modules if m == "torchao" or m.startswith("torchao."))
    assert not leaked, (
        f"torchao was imported in the pytest process ({leaked[:3]}...): run torchao code through "
        "tests/torchao_peer.py (a subprocess), it registers global Inductor passes"
    )


def test_executorch_was_never_imported_in_process() -> None:
    leaked = sorted(m for m in sys.modules if m == "executorch" or m.startswith("executorch."))
    assert not leaked, (
        f"executorch was imported in the pytest process ({leaked[:3]}...): deploy through "
        "tests/deploy/executorch_child.py (a subprocess); pt2q never imports executorch"
    )
