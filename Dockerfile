# Production image of dropops: no embedded database (DATABASE_URL points at RDS), queries
# checked against the committed .sqlx/ data, a small runtime image running as non-root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true
# Everything but what .dockerignore leaves out (target/, the demo database, .git/).
COPY . .
RUN cargo build --release --locked --no-default-features --bin dropops

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin dropops
COPY --from=build /src/target/release/dropops /usr/local/bin/dropops
USER 10001:10001
ENV DROPOPS_MODE=production \
    DROPOPS_BIND=0.0.0.0:8080 \
    DROPOPS_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/dropops"]
CMD ["serve"]
