#!/usr/bin/env bash
# Start the real services the integration tests talk to, on loopback, data under $RW_SERVICES_DIR.
#   InfluxDB 1.x        http://127.0.0.1:${RW_INFLUX_PORT:-18086}
#   VictoriaMetrics     http://127.0.0.1:${RW_VM_PORT:-18428}   (accepts InfluxDB's /api/v2/write)
#   Mosquitto           127.0.0.1:1883 (the machine's; started if down)
#   PostgreSQL          127.0.0.1:${RW_PG_PORT:-5432}   (the machine's if it answers, else a private cluster)
#   NATS (JetStream)    127.0.0.1:${RW_NATS_PORT:-4222} (the machine's if it answers, else a private server)
# Installing a missing service from Debian needs root (apt-get); everything else does not.
# Usage: source .ci/services.sh   (exports RW_TEST_* variables the tests read)
set -u
RW_SERVICES_DIR=${RW_SERVICES_DIR:-$(mktemp -d /tmp/rw-services.XXXXXX)}
RW_INFLUX_PORT=${RW_INFLUX_PORT:-18086}
RW_VM_PORT=${RW_VM_PORT:-18428}
RW_PG_PORT=${RW_PG_PORT:-5432}
RW_NATS_PORT=${RW_NATS_PORT:-4222}
export RW_SERVICES_DIR

need_apt=()
command -v influxd >/dev/null || need_apt+=(influxdb)
command -v victoria-metrics >/dev/null || need_apt+=(victoria-metrics)
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pg_up() { port_open "$RW_PG_PORT"; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if ! pg_up && [ -z "$pg_bin" ]; then need_apt+=(postgresql); fi
if ! port_open "$RW_NATS_PORT" && ! command -v nats-server >/dev/null; then need_apt+=(nats-server); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need ${need_apt[*]}: install them (apt-get install ${need_apt[*]}) or run this as root" >&2
    return 1 2>/dev/null || exit 1
  fi
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

# PostgreSQL: the machine's if it answers, else a private cluster (trust auth on loopback)
if ! pg_up; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  d="$RW_SERVICES_DIR/pg"; mkdir -p "$d"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then chmod 755 "$RW_SERVICES_DIR"; chown postgres "$d"; as_pg=(runuser -u postgres --); fi
  echo "starting a private PostgreSQL on 127.0.0.1:$RW_PG_PORT"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$d/data" -U postgres -A trust >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$d/data" -l "$d/pg.log" -w \
     -o "-c listen_addresses=127.0.0.1 -p $RW_PG_PORT -k $d -c fsync=off" start >/dev/null
  head -1 "$d/data/postmaster.pid" > "$d/pid"
  "$pg_bin/createdb" -h 127.0.0.1 -p "$RW_PG_PORT" -U postgres test
  # pg_ctl, not a signal to the pid, stops it cleanly: remembered for the caller's cleanup
  echo "${as_pg[*]} $pg_bin/pg_ctl -D $d/data -m fast stop" > "$d/stop"
fi

# NATS with JetStream: the machine's if it answers, else a private server
if ! port_open "$RW_NATS_PORT"; then
  d="$RW_SERVICES_DIR/nats"; mkdir -p "$d"
  echo "starting nats-server (JetStream) on 127.0.0.1:$RW_NATS_PORT"
  nohup nats-server -a 127.0.0.1 -p "$RW_NATS_PORT" -js -sd "$d/js" > "$d/nats.log" 2>&1 &
  echo $! > "$d/pid"
  for _ in $(seq 1 50); do port_open "$RW_NATS_PORT" && break; sleep 0.1; done
fi

export RW_TEST_MQTT="127.0.0.1:1883"
export RW_TEST_INFLUX_V1="http://127.0.0.1:$RW_INFLUX_PORT"
export RW_TEST_VM="http://127.0.0.1:$RW_VM_PORT"
export RW_TEST_POSTGRES="${RW_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:$RW_PG_PORT/test}"
export RW_TEST_NATS="nats://127.0.0.1:$RW_NATS_PORT"
