"""Operations: logging, metrics and the HTTP connection pools under the upstream clients."""
