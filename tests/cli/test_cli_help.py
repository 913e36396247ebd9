"""Every `katazuke` command builds its options and formats its help (argparse formats help
strings with %, so a stray % in a config field's help only shows up here)."""
from __future__ import annotations

import pytest

from katazuke.cli import COMMANDS, GROUPS, build_parser

_ALL = [(n,) for n in COMMANDS] + [(g, n) for g, subs in GROUPS.items() for n in subs]


@pytest.mark.parametrize("words", _ALL, ids=" ".join)
def test_help_formats(words, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*words, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: katazuke " + " ".join(words))
