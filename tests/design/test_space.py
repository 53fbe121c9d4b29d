"""The design-space file: validation, one-line errors, the documented reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from microbat.core.errors import FileFormatError, InvalidInputError
from microbat.design.objectives import objective_reference
from microbat.design.space import design_reference, example_space, load_space

DOCS = Path(__file__).resolve().parents[2] / "docs" / "design.md"


def _space(**over):
    data = {
        "descriptors": {"porosity": {"low": 0.25, "high": 0.45}},
        "objectives": ["energy_density"],
    }
    data.update(over)
    return data


def test_example_loads_and_is_documented():
    s = load_space(example_space())
    assert s.directions == {"energy_density": "maximize", "power_retention": "maximize"}
    assert set(s.searched) == {
        "porosity",
        "cbd_fraction",
        "mean_radius",
        "thickness",
        "calendering",
        "cbd_model",
    }
    assert s.searched["mean_radius"].kind == "log_uniform"
    assert s.searched["cbd_model"].kind == "categorical"
    full = s.complete({"porosity": 0.3})
    assert full["radius_cv"] == 0.3 and full["porosity"] == 0.3


@pytest.mark.parametrize(
    ("desc", "match"),
    [
        ({"porosity": {"low": 0.4, "high": 0.3}}, "inverted"),
        ({"porosity": {"low": 0.3, "high": 0.3}}, "empty"),
        ({"porosity": {"low": 25, "high": 45}}, "not percentages"),
        ({"mean_radius": {"low": 1, "high": 5}}, "metres"),
        ({"porosty": {"low": 0.2, "high": 0.3}}, "unknown descriptor"),
        ({"porosity": {"low": 0.2}}, "both low and high"),
        ({"cbd_model": {"choices": ["neck", "glue"]}}, "unknown choice"),
        ({"cbd_model": {"low": 0, "high": 1}}, "categorical"),
        ({"porosity": {"choices": ["a"]}}, "numeric"),
        ({"porosity": {"low": 0.2, "high": 0.4, "step": 0.5}}, "step"),
        ({"porosity": {"value": 0.3}}, "no descriptor varies"),
        (
            {"porosity": {"low": 0.2, "high": 0.4}, "active_fraction": {"low": 0.4, "high": 0.5}},
            "not both",
        ),
    ],
)
def test_bad_descriptors_are_refused_in_one_line(desc, match):
    with pytest.raises(InvalidInputError, match=match) as exc:
        load_space(_space(descriptors=desc))
    assert "\n" not in str(exc.value)


def test_unknown_objective_key_and_unavailable_objective():
    with pytest.raises(InvalidInputError, match="unknown objective 'energy'"):
        load_space(_space(objectives=["energy"]))
    with pytest.raises(InvalidInputError, match="not available: lithium plates"):
        load_space(_space(objectives=["plating_margin"]))
    with pytest.raises(InvalidInputError, match=r"needs evaluation\.fidelity = 'resolved'"):
        load_space(_space(objectives=["heterogeneity_index"]))
    ok = load_space(_space(objectives=["heterogeneity_index"], evaluation={"fidelity": "resolved"}))
    assert ok.directions == {"heterogeneity_index": "minimize"}
    with pytest.raises(InvalidInputError, match=r"evaluation\.fidelty: unknown key"):
        load_space(_space(evaluation={"fidelty": "micro"}))
    with pytest.raises(InvalidInputError, match="at least one objective"):
        load_space(_space(objectives=[]))


@pytest.mark.parametrize(
    ("cons", "match"),
    [
        ({"porosity_min": 0.5, "porosity_max": 0.4}, "porosity_min 0.5 is above"),
        ({"porosity_min": 0.6}, "binding constraint is constraints.porosity_min"),
        ({"porosity_max": 0.1}, "binding constraint is constraints.porosity_max"),
        ({"cbd_min": 0.2}, "binding constraint is constraints.cbd_min"),
        ({"thickness_max": 30e-6}, "binding constraint is constraints.thickness_max"),
    ],
)
def test_contradictory_constraints_name_the_binding_one(cons, match):
    desc = {
        "porosity": {"low": 0.25, "high": 0.45},
        "cbd_fraction": {"low": 0.02, "high": 0.1},
        "thickness": {"low": 40e-6, "high": 100e-6},
    }
    with pytest.raises(InvalidInputError, match="no feasible design exists") as exc:
        load_space(_space(descriptors=desc, constraints=cons))
    assert re.search(match, str(exc.value))


def test_porosity_range_from_the_active_fraction():
    s = load_space(
        _space(
            descriptors={
                "active_fraction": {"low": 0.5, "high": 0.6},
                "cbd_fraction": {"value": 0.1},
            }
        )
    )
    assert s.range_of("porosity") == pytest.approx((0.3, 0.4))
    assert "porosity" not in s.complete({"active_fraction": 0.55})


def test_file_errors(tmp_path):
    with pytest.raises(FileFormatError, match="no such design-space file"):
        load_space(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("objectives = [\n")
    with pytest.raises(FileFormatError, match="not valid TOML"):
        load_space(bad)


def test_docs_reference_tables_match_the_models():
    text = DOCS.read_text(encoding="utf-8")
    assert design_reference() in text, "regenerate the tables of docs/design.md"
    assert objective_reference() in text


def test_composite_space():
    s = load_space(
        {
            "generator": "composite",
            "objectives": ["ionic_transport", "active_volume_fraction"],
            "descriptors": {
                "active_fraction": {"low": 0.4, "high": 0.6},
                "se_fraction": {"low": 0.25, "high": 0.4},
            },
        }
    )
    assert s.percolation == ("solid_electrolyte", "active")
    assert s.range_of("porosity") == pytest.approx((0.0, 0.35))
    assert s.complete({})["mean_radius"] == 2.5e-6  # composite_cathode's default
    with pytest.raises(InvalidInputError, match="does not apply to the composite generator"):
        load_space(
            {
                "generator": "composite",
                "objectives": ["ionic_transport"],
                "descriptors": {"calendering": {"low": 0, "high": 0.2}},
            }
        )
    with pytest.raises(InvalidInputError, match="none for a solid-state composite"):
        load_space(
            {
                "generator": "composite",
                "objectives": ["energy_density"],
                "descriptors": {"se_fraction": {"low": 0.2, "high": 0.4}},
            }
        )
    with pytest.raises(InvalidInputError, match="does not apply to the electrode generator"):
        load_space(_space(descriptors={"se_fraction": {"low": 0.2, "high": 0.4}}))
