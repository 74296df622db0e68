# syntax=docker/dockerfile:1
# Build: the pinned dependencies and the project in a virtual environment.
FROM python:3.11-slim AS build
WORKDIR /app
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir "uv==0.13.9"
COPY requirements.lock pyproject.toml README.md ./
RUN /venv/bin/uv pip install --python /venv/bin/python --no-cache -r requirements.lock
COPY src ./src
COPY migrations ./migrations
COPY alembic.ini ./
RUN /venv/bin/uv pip install --python /venv/bin/python --no-cache --no-deps -e .

# Run: no compilers, a non-root user; migrations run at start, then the server.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 billing
COPY --from=build /venv /venv
COPY --from=build --chown=billing:billing /app /app
WORKDIR /app
USER billing
ENV PATH="/venv/bin:$PATH" \
    BILLING_API_ENV=production \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# Production needs BILLING_API_DATABASE_URL and BILLING_API_JWT_SECRET; start-up stops with a clear
# message without them. `serve` applies the migrations (one migrator at a time) before listening.
CMD ["billing-api", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
