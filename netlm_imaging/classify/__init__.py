"""Clinical rules: thresholds in a versioned data file, rationale strings for every decision."""
