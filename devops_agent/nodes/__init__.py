"""The graph's nodes: one module each, each an async function of (state, context) -> update."""
