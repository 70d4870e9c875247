#!/bin/sh
# Entrypoint of the wsd image. `run` without --config reads the mounted config $WSD_CONFIG_DIR/wsd.yaml; when there
# is none it stops with what to mount, instead of starting on the embedded default, whose gRPC API listens on the
# container's loopback where nothing outside the container can reach it. Every other command goes to wsd as is.
# exec: node replaces this shell, so the stop signal (from tini, PID 1) reaches the daemon itself.
set -eu
config_dir="${WSD_CONFIG_DIR:-/etc/wsd}"
wsd_home="${WSD_HOME:-/opt/wsd}"

if [ "${1-}" = run ]; then
  shift
  config_given=
  for arg in "$@"; do
    case "$arg" in
      -c | -c?* | --config | --config=*) config_given=1 ;;
    esac
  done
  if [ -z "$config_given" ]; then
    if [ ! -f "$config_dir/wsd.yaml" ]; then
      cat >&2 <<MESSAGE
wsd: no config at $config_dir/wsd.yaml.
In a container the gRPC API has to listen beyond loopback (e.g. api.address: 0.0.0.0:8080), and wsd serves it
there only over TLS. Mount a config that sets api.address and api.tls (certFile, keyFile, and caFile for mutual
TLS) at $config_dir/wsd.yaml, with the files it names, or pass run --config <file>. See docs/deploy.md.
MESSAGE
      exit 2
    fi
    set -- --config "$config_dir/wsd.yaml" "$@"
  fi
  set -- run "$@"
fi
exec node "$wsd_home/bin/wsd.js" "$@"
