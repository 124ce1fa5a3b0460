# syntax=docker/dockerfile:1
# Build and test on the Swift toolchain's Debian 12 image with the same commands as the
# README and CI; run on debian:bookworm-slim with only the runtime libraries.

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl-dev libnghttp2-dev pkg-config openssl python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The README's test command (what .ci/run calls): every test, interop peers included.
RUN CI=true scripts/test.sh
# The README's run command builds this product; the Swift runtime is linked in statically
# so that the runtime image needs no toolchain.
RUN swift build -c release --static-swift-stdlib --product deribit-gateway \
 && swift build -c release --static-swift-stdlib --product deribit-sim \
 && install -D "$(swift build -c release --show-bin-path)/deribit-gateway" /out/deribit-gateway \
 && install -D "$(swift build -c release --show-bin-path)/deribit-sim" /out/deribit-sim \
 && install -D config.example.json /out/config.example.json

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home gateway
COPY --from=build /out/ /usr/local/bin/
USER gateway
EXPOSE 8777
# Inside a container the gateway must listen beyond loopback: that needs configured
# clients and anonymous_scope none/public (SPEC §4); mount such a config at /etc/deribit-gateway.json.
ENTRYPOINT ["/usr/local/bin/deribit-gateway"]
CMD ["--config", "/usr/local/bin/config.example.json"]
