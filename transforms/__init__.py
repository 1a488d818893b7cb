"""liushui."""
