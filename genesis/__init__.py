"""genesis: a deep-learning framework written from scratch."""
