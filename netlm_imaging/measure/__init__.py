"""Pure measurement functions on Volumes and masks."""
