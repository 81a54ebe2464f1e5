"""The one console script: ``jaxstyle COMMAND`` dispatches to the cli modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxstyle.cli import main as cli

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("stylize", "train", "serve", "evaluate", "port-weights", "info"):
        assert f"\n  {name} " in out
    assert set(cli.COMMANDS) == {"stylize", "train", "serve", "evaluate", "port-weights", "info"}


@pytest.mark.parametrize("argv", [[], ["nope"], ["--style"]])
def test_unknown_or_missing_command_is_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("jaxstyle: error:") and "port-weights" in captured.err


def test_subcommand_gets_the_remaining_arguments(tmp_path, capsys):
    out = tmp_path / "vgg.npz"
    out.write_bytes(b"x")  # present: port-weights has nothing to do and says so
    assert cli.main(["port-weights", "--out", str(out)]) == 0
    assert "already exists" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["stylize", "--help"])
    assert exc.value.code == 0 and "--method" in capsys.readouterr().out


def test_python_dash_m_and_the_only_console_script():
    proc = subprocess.run([sys.executable, "-m", "jaxstyle", "--help"], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert proc.returncode == 0 and "port-weights" in proc.stdout
    section = re.search(r"^\[project\.scripts\]\n(.*?)(?=^\[)", (REPO / "pyproject.toml").read_text(), re.M | re.S)
    entries = [line for line in section.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert entries == ['jaxstyle = "jaxstyle.cli.main:main"']
