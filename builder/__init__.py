"""lmi-builder: one YAML recipe -> one ready-to-serve AWS LMI (DJL Serving) image."""

__version__ = "0.1.0"
