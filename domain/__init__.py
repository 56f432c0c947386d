"""The service's shared vocabulary: message states, conversation roles and turns, verdicts."""
