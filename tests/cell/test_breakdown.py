"""The voltage-loss breakdown closes to OCV − V and names the limitation."""

from __future__ import annotations

import numpy as np
import pytest

from microbat.cell import COMPONENTS, MicroProperties, voltage_breakdown


def test_sums_to_v_minus_ocv_within_1mV_at_every_step(chen_rates):
    bd = chen_rates.breakdown
    assert bd.c_rate == chen_rates.c_rate
    for part in bd.rates:
        total = part.ocv_V - part.voltage_V
        s = np.sum([part.losses_V[k] for k in COMPONENTS], axis=0)
        assert part.time_s.size > 50
        assert np.max(np.abs(total - s)) < 1e-3
        assert part.max_residual_V < 1e-3
        # the split per electrode adds up to the totals
        for k in ("reaction", "solid_diffusion", "ohmic_solid"):
            both = part.detail_V[f"{k}_negative"] + part.detail_V[f"{k}_positive"]
            np.testing.assert_allclose(both, part.losses_V[k], atol=1e-9)
    assert bd.max_residual_V < 1e-3


def test_losses_are_losses_on_discharge(chen_rates):
    part = chen_rates.breakdown.at(1.0)
    for k in COMPONENTS:
        assert part.final_loss_V[k] > 0, k
    # losses grow with rate at the end of discharge
    a, b = chen_rates.breakdown.at(0.5), chen_rates.breakdown.at(2.0)
    assert b.final_loss_V["ohmic_electrolyte"] > a.final_loss_V["ohmic_electrolyte"]
    assert b.final_loss_V["reaction"] > a.final_loss_V["reaction"]


def test_depletion_at_3c_is_in_the_positive_electrode(chen_rates):
    part = chen_rates.breakdown.at(3.0)
    assert part.depleted_region == "positive electrode"
    assert part.electrolyte_min_fraction[-1] < 0.05
    assert part.electrolyte_min_fraction[0] == pytest.approx(1.0, abs=1e-6)


def test_higher_tortuosity_moves_losses_to_the_electrolyte(chen):
    tau_b = 0.335**-0.5
    low = MicroProperties(porosity=0.335, tau_electrolyte=tau_b)
    high = MicroProperties(porosity=0.335, tau_electrolyte=4 * tau_b)
    a = voltage_breakdown(chen, c_rates=(1.0,), transport="micro", micro=low).at(1.0)
    b = voltage_breakdown(chen, c_rates=(1.0,), transport="micro", micro=high).at(1.0)
    # only the positive electrode's ionic path is 4x more resistive (the separator and
    # the negative electrode are unchanged), so the ohmic loss grows, by less than 4x
    ratio = b.mean_loss_V["ohmic_electrolyte"] / a.mean_loss_V["ohmic_electrolyte"]
    assert 1.5 < ratio < 4.0
    share_a = a.mean_loss_V["ohmic_electrolyte"] / sum(a.mean_loss_V.values())
    share_b = b.mean_loss_V["ohmic_electrolyte"] / sum(b.mean_loss_V.values())
    assert share_b > share_a
    assert b.max_residual_V < 1e-3


def test_breakdown_table_and_json(chen_rates, tmp_path):
    bd = chen_rates.breakdown
    d = bd.to_dict()
    assert d["bottleneck_key"] == list(chen_rates.bottleneck_key)
    assert d["rates"][0]["n_steps"] > 0
    files = bd.save(tmp_path)
    assert (tmp_path / "breakdown_1C.csv").read_text().startswith("time_s,capacity_Ah,voltage_V")
    assert any(p.suffix == ".png" for p in files)


def test_half_cell_names_the_counter_electrode():
    """In a half cell the negative side's kinetics are the lithium-metal counter's."""
    from microbat.cell.breakdown import _bottleneck

    final = {
        "ohmic_electrolyte": 0.01,
        "concentration_electrolyte": 0.0,
        "ohmic_solid": 0.001,
        "reaction": 0.2,
        "solid_diffusion": 0.05,
    }
    detail = {
        "reaction_negative": np.array([0.15]),
        "reaction_positive": np.array([0.05]),
        "solid_diffusion_negative": np.array([0.0]),
        "solid_diffusion_positive": np.array([0.05]),
        "ohmic_solid_negative": np.array([0.0]),
        "ohmic_solid_positive": np.array([0.001]),
    }
    key, words = _bottleneck(True, final, detail, 1.0, "separator")
    assert key == "reaction" and "negative electrode" in words
    key, words = _bottleneck(True, final, detail, 1.0, "separator", half_cell=True)
    assert key == "reaction" and "lithium-metal counter electrode" in words
    assert "negative" not in words
    # a loss on the (absent) negative particles is never blamed on them
    detail["solid_diffusion_negative"] = np.array([0.06])
    final["solid_diffusion"] = 0.3
    key, words = _bottleneck(True, final, detail, 1.0, "separator", half_cell=True)
    assert key == "solid_diffusion" and "positive particles" in words
