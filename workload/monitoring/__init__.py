"""Reading traces back and testing them for drift."""
