"""``jaxstyle info``: every shipped model with its source and licence; versions, devices, caches."""

from __future__ import annotations

import json

from jaxstyle.cli import info
from jaxstyle.cli.main import main as jaxstyle_main
from jaxstyle.io import modelfile


def test_info_json_lists_every_shipped_model_with_source_and_licence(capsys):
    assert info.main(["--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    files = {m["file"] for m in record["models"]}
    shipped = {str(p.relative_to(modelfile.assets_dir())) for p in modelfile.assets_dir().rglob("*.msgpack")}
    assert files == shipped
    by_name = {f"{m['kind']}/{m['name']}": m for m in record["models"]}
    microast = by_name["microast/microast"]
    assert microast["license"] == "MIT" and "EndyWon/MicroAST" in microast["source"]
    assert microast["stored_dtype"] == "float16"
    assert by_name["transform/scream"]["source"] == info.OWN_SOURCE
    assert record["versions"]["jax"] and record["devices"] and record["paths"]["cache"]
    assert (modelfile.assets_dir() / "microast" / "LICENSE").read_text().startswith("MIT License")


def test_info_text_and_the_command_list(capsys):
    assert jaxstyle_main(["info"]) == 0
    out = capsys.readouterr().out
    assert "microast/microast" in out and "versions: jaxstyle" in out
    assert jaxstyle_main(["--help"]) == 0
    assert "info" in capsys.readouterr().out
