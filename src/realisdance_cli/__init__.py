"""realisdance-cli: controllable character animation with realistic hands (RealisDance)."""

__version__ = "0.1.0"
