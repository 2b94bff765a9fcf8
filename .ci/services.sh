#!/usr/bin/env bash
# Start the real services the integration tests talk to, on loopback, data under $RW_SERVICES_DIR.
#   InfluxDB 1.x        http://127.0.0.1:${RW_INFLUX_PORT:-18086}
#   VictoriaMetrics     http://127.0.0.1:${RW_VM_PORT:-18428}   (accepts InfluxDB's /api/v2/write)
#   Mosquitto           127.0.0.1:1883 (the machine's; started if down)
# Usage: source .ci/services.sh   (exports RW_TEST_* variables the tests read)
set -u
RW_SERVICES_DIR=${RW_SERVICES_DIR:-$(mktemp -d /tmp/rw-services.XXXXXX)}
RW_INFLUX_PORT=${RW_INFLUX_PORT:-18086}
RW_VM_PORT=${RW_VM_PORT:-18428}
export RW_SERVICES_DIR

need_apt=()
command -v influxd >/dev/null || need_apt+=(influxdb)
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

wait_http() { # url tries
  for _ in $(seq 1 "${2:-100}"); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "service at $1 did not come up" >&2; return 1
}

# Mosquitto on 1883
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "starting mosquitto on 127.0.0.1:1883"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  sleep 0.5
fi

# InfluxDB 1.x
if ! curl -fsS -o /dev/null "http://127.0.0.1:$RW_INFLUX_PORT/ping" 2>/dev/null; then
  d="$RW_SERVICES_DIR/influx"; mkdir -p "$d"
  cat > "$d/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((RW_INFLUX_PORT + 2))"
[meta]
  dir = "$d/meta"
[data]
  dir = "$d/data"
  wal-dir = "$d/wal"
  query-log-enabled = false
  index-version = "inmem"
[http]
  enabled = true
  bind-address = "127.0.0.1:$RW_INFLUX_PORT"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
CONF
  echo "starting influxd on 127.0.0.1:$RW_INFLUX_PORT"
  nohup influxd -config "$d/influxdb.conf" > "$d/influxd.log" 2>&1 &
  echo $! > "$d/pid"
  wait_http "http://127.0.0.1:$RW_INFLUX_PORT/ping"
fi

# VictoriaMetrics
if ! curl -fsS -o /dev/null "http://127.0.0.1:$RW_VM_PORT/health" 2>/dev/null; then
  d="$RW_SERVICES_DIR/vm"; mkdir -p "$d"
  echo "starting victoria-metrics on 127.0.0.1:$RW_VM_PORT"
  nohup victoria-metrics -httpListenAddr "127.0.0.1:$RW_VM_PORT" -storageDataPath "$d/data" \
     -retentionPeriod 100y -search.latencyOffset 0s -loggerLevel WARN > "$d/vm.log" 2>&1 &
  echo $! > "$d/pid"
  wait_http "http://127.0.0.1:$RW_VM_PORT/health"
fi

export RW_TEST_MQTT="127.0.0.1:1883"
export RW_TEST_INFLUX_V1="http://127.0.0.1:$RW_INFLUX_PORT"
export RW_TEST_VM="http://127.0.0.1:$RW_VM_PORT"
export RW_TEST_POSTGRES="${RW_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/test}"
