"""Operations: request ids, structured logs, security headers, Prometheus metrics."""
