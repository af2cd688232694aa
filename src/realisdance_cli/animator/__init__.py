"""The RealisDance animator: the network, its checkpoint formats and the sampling pipeline."""
