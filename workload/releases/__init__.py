"""The lab's prompt as a versioned artifact: its template, the registry, promotion."""
