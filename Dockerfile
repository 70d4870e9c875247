# wsd node agent image. Build: docker build -t wsd .   Run: see deploy/ for the DaemonSet.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY core core
COPY plugins plugins
COPY test test
COPY bench bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

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
ENV WSD_DATA_DIR=/var/lib/wsd WSD_HTTP_ADDRESS=0.0.0.0:9500
EXPOSE 9500
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/wsd/bin/wsd.js"]
CMD ["run"]
