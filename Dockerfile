# wsd node agent image (first version). Build: docker build -t wsd .   Run: docker run -v /var/lib/wsd:/var/lib/wsd wsd
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts scripts
COPY proto proto
COPY core core
COPY plugins plugins
COPY test test
COPY bench bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
# git for the git initializer, GNU tar + zstd for backup archives.
RUN apt-get update && apt-get install -y --no-install-recommends git tar zstd ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/wsd
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY package.json ./
COPY bin bin
COPY config config
COPY proto proto
# The gRPC API stays on loopback until a config with TLS is mounted (docs/api.md).
ENV WSD_DATA_DIR=/var/lib/wsd WSD_HTTP_ADDRESS=0.0.0.0:9500
EXPOSE 9500 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/wsd/bin/wsd.js"]
CMD ["run"]
