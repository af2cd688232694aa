"""Training RealisDance: data, the two stages' networks, the objective and the loop."""
