#!/bin/sh
# clipper/prometheus: write the scrape configuration from the environment, then run Prometheus
# (Debian's package) on PROMETHEUS_LISTEN, the loopback by default. Extra arguments are passed on.
set -eu
config=/etc/clipper/prometheus/prometheus.yml
sed -e "s|@QUERY_TARGET@|${CLIPPER_QUERY_TARGET}|" \
    -e "s|@SCRAPE_INTERVAL@|${PROMETHEUS_SCRAPE_INTERVAL}|" \
    /etc/clipper/prometheus.yml.in > "$config"
exec /usr/bin/prometheus \
    --config.file="$config" \
    --storage.tsdb.path=/var/lib/prometheus/metrics2 \
    --storage.tsdb.retention.time="${PROMETHEUS_RETENTION}" \
    --web.listen-address="${PROMETHEUS_LISTEN}" \
    "$@"
