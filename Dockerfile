# wsd node agent image.
#   Build: docker build -t wsd .
#   Run:   docker run -v /var/lib/wsd:/var/lib/wsd -v /etc/wsd:/etc/wsd:ro -p 8080:8080 -p 9500:9500 wsd
# /etc/wsd/wsd.yaml must set api.tls (docs/deploy.md). No Docker engine builds this file in CI:
# test/deploy/dockerfile.test.ts keeps it honest (COPY sources, production dependencies only, every program the
# daemon runs installed, the entrypoint's behaviour).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here, and no dependency needs an install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/gen-proto.mjs scripts/
COPY proto proto
COPY core core
COPY plugins plugins
# .dockerignore keeps test/, bench/ and every *.test.ts out of the context: dist/ holds the daemon and nothing else.
RUN npm run build

FROM node:20-bookworm-slim AS runtime
# The programs the daemon runs: git (openssh-client for ssh:// and user@host:path remotes, ca-certificates for
# https), GNU tar and zstd for archives; du comes with coreutils in the base image. tini runs as PID 1 and reaps
# orphaned grandchildren (an ssh left behind by a killed git), which node as PID 1 would leave as zombies.
# quota/loop: mount, umount and losetup (mount), mkfs.ext4, e2fsck and resize2fs (e2fsprogs), mkfs.xfs and
# xfs_growfs (xfsprogs); fallocate comes with util-linux. quota/xfs: xfs_quota and xfs_io (xfsprogs). quota/lvm: lvm
# (lvm2), and thin_check (thin-provisioning-tools), which lvm runs when it activates a thin pool.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git openssh-client tar tini zstd e2fsprogs mount xfsprogs lvm2 thin-provisioning-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/wsd
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist dist
COPY bin bin
COPY config config
COPY proto proto
COPY deploy/docker/entrypoint.sh /usr/local/bin/wsd-entrypoint
# Used by `wsd config validate` and friends without --config; `run` reads the mounted /etc/wsd/wsd.yaml.
ENV WSD_DATA_DIR=/var/lib/wsd
# gRPC API (TLS), then /healthz, /readyz and /metrics: the ports of the config in deploy/kubernetes/.
EXPOSE 8080 9500
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/wsd-entrypoint"]
CMD ["run"]
