"""Node types: the contract (``base``), the families (sources, transforms, sinks) and their helpers."""
