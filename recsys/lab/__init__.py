"""Learning from interactions: protocols, recommenders, metrics and evaluation."""
