# syntax=docker/dockerfile:1
# The hotroute container image: a statically linked hotroute (and a static busybox for the health check) in an
# otherwise empty image, run as a non-root user, serving /routes/routes.toml on 0.0.0.0:3000.
#
#   docker build -t hotroute .
#   docker run --rm -p 3000:3000 -v "$PWD/routes:/routes:ro" -e HOTROUTE_ADMIN_TOKEN=change-me-16-chars-or-more hotroute
#
# The runtime stage is the same as container/Containerfile.prebuilt's (scripts/test-packages checks it), which the
# release workflow and CI use to wrap a binary built outside the image.

ARG RUST_VERSION=1.88

FROM rust:${RUST_VERSION}-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# busybox-static: `wget` for the HEALTHCHECK, in one static file, since the runtime image has no shell or curl.
# Not pinned: bookworm's security updates of it are wanted, and nothing depends on its exact version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends busybox-static \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# README.md: the crate's docs include it; routes.toml: the image's default routes; benches/: Cargo.toml names them,
# and cargo refuses a manifest whose targets are missing. scripts/test-packages builds from exactly these files.
COPY Cargo.toml Cargo.lock README.md routes.toml ./
COPY src ./src
COPY benches ./benches
# +crt-static on the gnu target links glibc in: the binary runs in an image with no libc (FROM scratch). The host
# triple comes from rustc, so that the same file builds the arm64 image on an arm64 builder.
RUN target="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" \
    && mkdir -p /out \
    && cp "target/$target/release/hotroute" /bin/busybox routes.toml /out/

FROM scratch
COPY --from=build /out/hotroute /out/busybox /usr/local/bin/
COPY --from=build /out/routes.toml /routes/routes.toml
# Any non-root id works: the image has no /etc/passwd, and hotroute only reads /routes.
USER 65532:65532
EXPOSE 3000
# /__admin/health answers without the admin token (only status, routes, generation): fit for probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/__admin/health"]
# Mount your route folder on /routes (read-only is fine): saving routes.toml there reloads the server. Set
# HOTROUTE_ADMIN_TOKEN (16+ printable characters) for the admin API; without it a random token is printed on stderr.
ENTRYPOINT ["/usr/local/bin/hotroute"]
CMD ["/routes/routes.toml", "--listen", "0.0.0.0:3000"]
