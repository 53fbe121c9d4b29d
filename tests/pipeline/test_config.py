"""Settings of the twin: TOML loading, validation with teaching errors, overrides, docs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.pipeline.config import (
    TwinConfig,
    apply_overrides,
    config_reference,
    load_config,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "twin.md"


def test_defaults_and_partial_file(tmp_path):
    f = tmp_path / "twin.toml"
    f.write_text("[denoise]\nsearch_radius = 2\n[cell]\nc_rates = [0.5, 2]\n")
    cfg = load_config(f)
    assert cfg.denoise.search_radius == 2
    assert cfg.cell.c_rates == [0.5, 2.0]
    assert cfg.segment == TwinConfig().segment  # untouched sections keep defaults
    assert load_config(None) == TwinConfig()


def test_to_toml_round_trip():
    cfg = apply_overrides(TwinConfig(), {"input.voxel_size": [4e-7], "cell.thickness": 7e-5})
    again = TwinConfig.model_validate(tomllib.loads(cfg.to_toml()))
    assert again == cfg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[denoise]\nserch_radius = 2\n", "denoise.serch_radius: unknown key"),
        ("[input]\nvoxel_size = [0.4]\n", "metres"),
        ("[cell]\nc_rates = [1, -2]\n", "c_rates"),
        ("[segment]\nvariance = 'wide'\n", "segment.variance"),
        ("[nosuch]\nx = 1\n", "nosuch"),
        ("[denoise\n", "not a valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        load_config(f)
    assert needle in str(info.value)


def test_missing_file():
    with pytest.raises(FileFormatError, match="no such configuration file"):
        load_config("/nonexistent/twin.toml")


def test_overrides_from_cli_strings():
    cfg = apply_overrides(
        TwinConfig(),
        [
            "segment.beta=1.25",
            "cell.c_rates=[0.1, 3]",
            "cell.thickness=image",
            "metrics.sizes=false",
        ],
    )
    assert cfg.segment.beta == 1.25
    assert cfg.cell.c_rates == [0.1, 3.0]
    assert cfg.cell.thickness == "image"
    assert cfg.metrics.sizes is False
    with pytest.raises(InvalidInputError, match=r"section\.key=value"):
        apply_overrides(TwinConfig(), ["beta"])
    with pytest.raises(InvalidInputError, match="unknown section"):
        apply_overrides(TwinConfig(), ["sgment.beta=1"])


def test_every_key_is_documented_with_default():
    ref = config_reference()
    for sname, sfield in TwinConfig.model_fields.items():
        for key, f in sfield.annotation.model_fields.items():
            assert f.description, f"{sname}.{key} has no description"
            assert f"`{sname}.{key}`" in ref
    text = DOCS.read_text("utf-8")
    # the table in the docs is the generated one, defaults and units included
    assert ref in text, "docs/twin.md is out of date: paste config_reference() into it"
