"""The import-circle check of ``make lint``, on small packages written here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import check_imports


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_clean_package_passes(tmp_path, capsys):
    root = package(tmp_path, {"a.py": "from . import b\nfrom .sub import c\n", "b.py": "import os\n",
                              "sub/__init__.py": "from .c import C\n", "sub/c.py": "from ..b import x\nC = 1\n"})
    assert check_imports.main([str(root)]) == 0
    assert "no circle" in capsys.readouterr().err


def test_a_circle_through_a_function_and_type_checking_is_named(tmp_path, capsys):
    root = package(tmp_path, {
        "a.py": "def f():\n    from .b import g\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import h\n",
        "c.py": "from pkg import a\n",
    })
    assert check_imports.main([str(root)]) == 1
    err = capsys.readouterr().err
    assert "import circle: pkg.a -> pkg.b -> pkg.c -> pkg.a" in err
    assert "pkg/a.py:2" in err and "pkg/b.py:3" in err and "pkg/c.py:1" in err


def test_an_import_of_the_own_package_init_runs_back_up(tmp_path, capsys):
    root = package(tmp_path, {"__init__.py": "X = 1\n", "sub/__init__.py": "", "sub/m.py": "from .. import X\n"})
    assert check_imports.main([str(root)]) == 1
    assert "pkg.sub.m imports pkg (its own package's __init__: runs back up)" in capsys.readouterr().err


def test_the_harvester_package_has_no_import_circle():
    files = check_imports.modules(Path(__file__).parent.parent / "harvester")
    graph = check_imports.edges(files)
    assert check_imports.back_up(graph, files) == []
    assert check_imports.circles(graph) == []


def test_an_import_of_a_room_above_is_named_and_the_root_is_below_every_room(tmp_path, capsys):
    root = package(tmp_path, {"core.py": "", "cli.py": "from .high import h\n",
                              "low/__init__.py": "", "low/l.py": "from .. import core\nfrom ..high import h\n",
                              "high/__init__.py": "", "high/h.py": "from ..low import l\nfrom .. import core\n"})
    assert check_imports.main([str(root), "--rooms", "low,high"]) == 1
    err = capsys.readouterr().err
    assert "pkg/low/l.py:2: pkg.low.l imports pkg.high.h, a room above its own" in err
    assert err.count("a room above") == 1                  # high -> low, rooms -> root, cli -> high: fine
    assert check_imports.main([str(root), "--rooms", "high,low"]) == 1
    assert "pkg.high.h imports pkg.low.l" in capsys.readouterr().err


def test_a_room_the_order_leaves_out_is_named(tmp_path, capsys):
    root = package(tmp_path, {"low/__init__.py": "", "other/__init__.py": ""})
    assert check_imports.main([str(root), "--rooms", "low"]) == 1
    assert "room 'other' is not in --rooms" in capsys.readouterr().err
