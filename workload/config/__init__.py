"""Settings, stack outputs, the tracking store and experiment: resolved once, at the edge."""
