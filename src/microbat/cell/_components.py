"""Names of the voltage-loss components (a leaf module).

Shared by :mod:`microbat.cell.breakdown`, which computes the components, and
:mod:`microbat.cell.plots`, which stacks them, so that neither imports the other for
them; both names are re-exported from :mod:`microbat.cell.breakdown`.
"""

__all__ = ["COMPONENTS", "COMPONENT_LABELS"]

#: Loss components, in stacking order.
COMPONENTS = (
    "ohmic_electrolyte",
    "concentration_electrolyte",
    "ohmic_solid",
    "reaction",
    "solid_diffusion",
)
COMPONENT_LABELS = {
    "ohmic_electrolyte": "electrolyte ohmic",
    "concentration_electrolyte": "electrolyte concentration",
    "ohmic_solid": "solid ohmic",
    "reaction": "reaction (kinetic)",
    "solid_diffusion": "solid diffusion (surface vs bulk OCP)",
}
