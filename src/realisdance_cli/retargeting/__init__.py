"""3-D retargeting: the driving dance re-posed on the reference picture's own body."""
