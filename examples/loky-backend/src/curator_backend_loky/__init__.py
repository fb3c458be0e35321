"""curator-backend-loky: a curator backend on joblib's loky executor."""
