#!/usr/bin/env bash
# SPEC §10 benchmark: the same workloads, in one run on loopback, against
#   direct      the simulator itself (the floor: no proxy at all)
#   nginx       nginx as a plain WebSocket pass-through to the simulator (the floor any proxy pays)
#   gw-dispatch deribit-gateway with "transport": {"event_loop": "dispatch"}
#   gw-epoll    deribit-gateway with "transport": {"event_loop": "epoll"}
# and, in section 6, counts the gateway's heap allocations per forwarded notification (both event
# loops, under the LD_PRELOAD shim scripts/malloc-count.c).
# Prints Markdown tables on stdout (progress on stderr). A benchmark, not a test: CI never runs it.
#
#   scripts/bench.sh                 # full run, about 9 minutes
#   QUICK=1 scripts/bench.sh         # shorter runs, for trying the script
#   BENCH_BIN=DIR scripts/bench.sh   # use release binaries already built in DIR
#   SECTIONS=6 scripts/bench.sh      # only the sections listed (1-6), e.g. allocations alone: ~1.5 minutes
#
# Everything it starts listens on ports the kernel picks (port 0), is stopped by pid on exit,
# and lives under one temporary directory. nginx is installed from Debian when missing and run
# in the foreground with its own prefix: no system service is started.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
RPC_SECONDS=${RPC_SECONDS:-$([ "$QUICK" = 1 ] && echo 1 || echo 3)}
FAN_SECONDS=${FAN_SECONDS:-$([ "$QUICK" = 1 ] && echo 1.5 || echo 3)}
MIX_SECONDS=${MIX_SECONDS:-$([ "$QUICK" = 1 ] && echo 4 || echo 10)}
CONNS=${CONNS:-$([ "$QUICK" = 1 ] && echo 2000 || echo 10000)}
FAN_RATES=${FAN_RATES:-500,1000,1500,2000,2500,3000,5000}
FAN_BATCH_US=${FAN_BATCH_US:-250}
PATHS=${PATHS:-"direct nginx gw-dispatch gw-epoll"}
# Rounds of the interleaved 1,000 req/s runs behind the SPEC ratios (section 1).
RPC_ROUNDS=${RPC_ROUNDS:-$([ "$QUICK" = 1 ] && echo 2 || echo 5)}
# The rounds' sender spins this long before each send instead of sleeping through it (10 % of a
# core at 1,000 req/s), so that its own wake-up lateness stays out of every path's p99.
RPC_SPIN_US=${RPC_SPIN_US:-100}
SECTIONS=${SECTIONS:-"1 2 3 4 5 6"}
ALLOC_SUBSCRIBERS=${ALLOC_SUBSCRIBERS:-10}
ALLOC_WARMUP=${ALLOC_WARMUP:-2000}
ALLOC_COUNT=${ALLOC_COUNT:-$([ "$QUICK" = 1 ] && echo 6000 || echo 20000)}
ALLOC_RATE=${ALLOC_RATE:-2000}
ALLOC_MIX_SECONDS=${ALLOC_MIX_SECONDS:-$([ "$QUICK" = 1 ] && echo 4 || echo 10)}

want() { [[ " $SECTIONS " == *" $1 "* ]]; }  # is section N selected?
# Sections 1-4 compare the relays (nginx and the two gateways; their set-up needs both simulators);
# section 5 starts its own gateways; section 6 its own, on both simulators.
RELAYS=0; for n in 1 2 3 4; do if want $n; then RELAYS=1; fi; done
MIX_SIM=$RELAYS; if want 6; then MIX_SIM=1; fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- build
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
else
    SCRATCH=${BENCH_SCRATCH:-.build-bench}
    log "building release products (scratch path $SCRATCH)"
    swift build -c release --scratch-path "$SCRATCH" >&2
    BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)
fi
for p in deribit-sim deribit-gateway gateway-bench; do
    [ -x "$BIN/$p" ] || { echo "missing $BIN/$p" >&2; exit 1; }
done
BENCH="$BIN/gateway-bench"

# ---------------------------------------------------------------- nginx
if [ "$RELAYS" = 1 ] && ! command -v nginx >/dev/null 2>&1; then
    log "installing nginx (Debian package)"
    # Debian's postinst would start the system service; policy-rc.d 101 forbids that.
    POLICY_CREATED=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        POLICY_CREATED=1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >&2 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
    [ "$POLICY_CREATED" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
NGINX=$(command -v nginx || true)
command -v curl >/dev/null 2>&1 || { apt-get update -qq >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >&2; }

# ---------------------------------------------------------------- limits, cleanup
# 10,000 clients need 10,000 descriptors in the bench, the proxy, and (through nginx) the simulator.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# nginx holds two descriptors per client (client side and upstream side).
if [ "$(ulimit -n)" -lt $((CONNS + 512)) ]; then
    CONNS=$(( $(ulimit -n) - 512 ))
    if want 4; then log "ulimit -n is $(ulimit -n): connections workload reduced to $CONNS clients"; fi
fi
NGINX_CONNS=$CONNS
if [ "$(ulimit -n)" -lt $((2 * CONNS + 512)) ]; then
    NGINX_CONNS=$(( ($(ulimit -n) - 512) / 2 ))
    if want 4; then log "ulimit -n is $(ulimit -n) (hard limit): nginx gets $NGINX_CONNS clients, two descriptors each"; fi
fi

WORK=$(mktemp -d /tmp/gateway-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop NAME: stops what start NAME started (SIGTERM; SIGKILL if it is still there after 5 s) and
# forgets its pid.
stop() {
    local var="PID_${1//-/_}"
    local pid=${!var} timer p rest=()
    kill -TERM "$pid" 2>/dev/null || true
    sleep 5 & timer=$!  # the deadline
    # wait -n returns when the first of the two ends; it does not see a job that ended before it
    # was called, hence kill -0 first (at worst that race costs the 5 s of the deadline).
    if kill -0 "$pid" 2>/dev/null; then wait -n "$pid" "$timer" 2>/dev/null || true; fi
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    kill "$timer" 2>/dev/null || true
    wait "$pid" "$timer" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}

# start NAME CMD...: runs CMD in the background, records its pid in PID_NAME and, once it has
# printed "... listening on HOST:PORT", its port in PORT_NAME.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    printf -v "PID_${name//-/_}" '%s' "$pid"
    local deadline=$((SECONDS + 15)) port=""
    while [ -z "$port" ]; do
        port=$(sed -n 's/.* listening on .*:\([0-9][0-9]*\)$/\1/p' "$WORK/$name.out" | head -1)
        if [ -z "$port" ]; then
            kill -0 "$pid" 2>/dev/null || { echo "$name exited:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
            [ $SECONDS -lt $deadline ] || { echo "$name did not listen within 15 s" >&2; exit 1; }
            sleep 0.05
        fi
    done
    printf -v "PORT_${name//-/_}" '%s' "$port"
}

wait_health() {  # PORT: /health 200 within 15 s
    local deadline=$((SECONDS + 15))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health")" = 200 ]; do
        [ $SECONDS -lt $deadline ] || { echo "gateway on $1 never healthy" >&2; exit 1; }
        sleep 0.05
    done
}

# ---------------------------------------------------------------- the simulators
# Credits are lifted so that 10,000 requests/s are not refused as Deribit would refuse them:
# what is measured is the relay, not the rate limiter.
LIFT=(--credit-cost 1 --credit-max 1000000000 --credit-refill 1000000000
      --subscribe-cost 1 --subscribe-max 1000000000 --subscribe-refill 1000000000)
# sim-a: request path, fan-out, connections, start-up. --rate 1: the hot channel's own synthetic
# ticks stay out of the way of the published ones.
start sim-a "$BIN/deribit-sim" --listen 127.0.0.1:0 --rate 1 "${LIFT[@]}"
# sim-b: the Deribit-like mix: 50 instruments x 4 channels = 200 channels at 22.5 steps/s
# (= 4,500 notifications/s when all are held), books 400 levels deep (15-30 KB snapshots).
MIX_INSTRUMENTS="BTC-PERPETUAL,ETH-PERPETUAL,BTC-25DEC26,BTC-26MAR27"
for k in $(seq 40000 5000 150000); do MIX_INSTRUMENTS+=",BTC-25DEC26-$k-C,BTC-25DEC26-$k-P"; done
if [ "$MIX_SIM" = 1 ]; then
    start sim-b "$BIN/deribit-sim" --listen 127.0.0.1:0 --rate 22.5 --book-depth 400 \
        --instruments "$MIX_INSTRUMENTS" "${LIFT[@]}"
fi

# ---------------------------------------------------------------- nginx (sections 1-4)
if [ "$RELAYS" = 1 ]; then
    mkdir -p "$WORK/nginx/tmp"
    NGINX_A=$("$BENCH" free-port)
    NGINX_B=$("$BENCH" free-port)
    while [ "$NGINX_B" = "$NGINX_A" ]; do NGINX_B=$("$BENCH" free-port); done
    nginx_server() {  # LISTEN_PORT UPSTREAM_PORT
        cat <<EOF
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://127.0.0.1:$2;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
EOF
    }
    cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 30000; use epoll; multi_accept on; }
http {
    access_log off;
    tcp_nodelay on;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
$(nginx_server "$NGINX_A" "$PORT_sim_a")
$(nginx_server "$NGINX_B" "$PORT_sim_b")
}
EOF
    "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" >"$WORK/nginx.out" 2>&1 &
    PID_nginx=$!
    PIDS+=("$PID_nginx")
    deadline=$((SECONDS + 15))
    until curl -s -o /dev/null "http://127.0.0.1:$NGINX_A/sim/state" && curl -s -o /dev/null "http://127.0.0.1:$NGINX_B/sim/state"; do
        kill -0 "$PID_nginx" 2>/dev/null || { cat "$WORK/nginx.out" "$WORK/nginx/error.log" >&2; exit 1; }
        [ $SECONDS -lt $deadline ] || { echo "nginx did not come up" >&2; exit 1; }
        sleep 0.05
    done
fi

# ---------------------------------------------------------------- the gateways
# The load generator's clients are anonymous: the anonymous limits (a policy, not the relay)
# are lifted, as the credits are, so that the relay itself is measured.
gateway_config() {  # SIM_PORT EVENT_LOOP
    cat <<EOF
{
  "listen": "127.0.0.1:0",
  "upstream": {
    "url": "ws://127.0.0.1:$1/ws/api/v2",
    "client_id": "sim-client", "client_secret": "sim-secret",
    "credits": { "default_cost": 1, "max": 1000000000, "refill_per_s": 1000000000,
                 "subscribe_cost": 1, "subscribe_max": 1000000000 }
  },
  "limits": { "max_clients": 20000 },
  "anonymous_limits": { "rate_limit": { "per_s": 1000000000, "burst": 1000000000 },
                        "total_rate_limit": { "per_s": 1000000000, "burst": 1000000000 } },
  "transport": { "event_loop": "$2" }
}
EOF
}
for loop in dispatch epoll; do
    gateway_config "$PORT_sim_a" "$loop" > "$WORK/gw-a-$loop.json"
    if [ "$MIX_SIM" = 1 ]; then gateway_config "$PORT_sim_b" "$loop" > "$WORK/gw-b-$loop.json"; fi
done
if [ "$RELAYS" = 1 ]; then
    for loop in dispatch epoll; do
        start "gw-a-$loop" "$BIN/deribit-gateway" --config "$WORK/gw-a-$loop.json" --log-level warning
        start "gw-b-$loop" "$BIN/deribit-gateway" --config "$WORK/gw-b-$loop.json" --log-level warning
    done
    wait_health "$PORT_gw_a_dispatch"; wait_health "$PORT_gw_a_epoll"
    wait_health "$PORT_gw_b_dispatch"; wait_health "$PORT_gw_b_epoll"
fi

url_a() {  # PATH-NAME -> ws URL towards sim-a
    case $1 in
        direct) echo "ws://127.0.0.1:$PORT_sim_a/ws/api/v2" ;;
        nginx) echo "ws://127.0.0.1:$NGINX_A/ws/api/v2" ;;
        gw-dispatch) echo "ws://127.0.0.1:$PORT_gw_a_dispatch/ws/api/v2" ;;
        gw-epoll) echo "ws://127.0.0.1:$PORT_gw_a_epoll/ws/api/v2" ;;
    esac
}
url_b() {
    case $1 in
        direct) echo "ws://127.0.0.1:$PORT_sim_b/ws/api/v2" ;;
        nginx) echo "ws://127.0.0.1:$NGINX_B/ws/api/v2" ;;
        gw-dispatch) echo "ws://127.0.0.1:$PORT_gw_b_dispatch/ws/api/v2" ;;
        gw-epoll) echo "ws://127.0.0.1:$PORT_gw_b_epoll/ws/api/v2" ;;
    esac
}
pid_a() {  # the process that relays on this path (direct: the simulator itself)
    case $1 in
        direct) echo "$PID_sim_a" ;; nginx) echo "$PID_nginx" ;;
        gw-dispatch) echo "$PID_gw_a_dispatch" ;; gw-epoll) echo "$PID_gw_a_epoll" ;;
    esac
}
pid_b() {
    case $1 in
        direct) echo "$PID_sim_b" ;; nginx) echo "$PID_nginx" ;;
        gw-dispatch) echo "$PID_gw_b_dispatch" ;; gw-epoll) echo "$PID_gw_b_epoll" ;;
    esac
}

# ---------------------------------------------------------------- report
echo "# gateway-bench results ($(date -u +%Y-%m-%dT%H:%MZ))"
echo
echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $(uname -r)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- sections: $SECTIONS; nginx: $([ "$RELAYS" = 1 ] && "$NGINX" -v 2>&1 | sed 's/.*: //' || echo "not started"); binaries: $BIN"
echo

# 1. request path
if want 1; then
    log "1/6 request path"
    echo "## 1. Request path: public/get_time, latency from the scheduled send time"
    echo
    echo "Runs of ${RPC_SECONDS} s (+0.5 s warm-up). 'bench CPU' is the load generator's own CPU, % of one core."
    echo
    first=1
    for p in $PATHS; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        "$BENCH" rpc "${hdr[@]}" --url "$(url_a "$p")" --label "$p" --rates 100,1000,10000 --clients 1,10 \
            --duration "$RPC_SECONDS" 2>>"$WORK/notes" | tee -a "$WORK/rpc.md"
    done
    echo
    # Added latency at 1,000 req/s (SPEC §10 target: gateway p50 <= 1.25x and p99 <= 1.5x what nginx adds).
    awk -F'|' '
        /^\| [a-z-]+ \| [0-9]+ \| 1000 \|/ {
            gsub(/ /, "", $2); gsub(/ /, "", $3)
            p50[$2, $3] = $9 + 0; p99[$2, $3] = $10 + 0
            if (!($2 in seen)) { seen[$2] = 1; paths[++np] = $2 }
            if (!($3 in seenc)) { seenc[$3] = 1; cls[++nc] = $3 }
        }
        END {
            print "Added round-trip latency at 1,000 req/s (path minus direct), and the SPEC ratios"
            print "(target: gateway added p50 <= 1.25x and added p99 <= 1.5x nginx added):"
            print ""
            print "| clients | path | p50 µs | p99 µs | added p50 µs | added p99 µs | added p50 / nginx added | added p99 / nginx added | p50 / direct | p99 / direct |"
            print "|---|---|---|---|---|---|---|---|---|---|"
            for (i = 1; i <= nc; i++) for (j = 1; j <= np; j++) {
                c = cls[i]; p = paths[j]
                if (p == "direct") continue
                a50 = p50[p, c] - p50["direct", c]; a99 = p99[p, c] - p99["direct", c]
                n50 = p50["nginx", c] - p50["direct", c]; n99 = p99["nginx", c] - p99["direct", c]
                r50 = (p == "nginx" || n50 <= 0) ? "–" : sprintf("%.2f", a50 / n50)
                r99 = (p == "nginx" || n99 <= 0) ? "–" : sprintf("%.2f", a99 / n99)
                printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %.2f | %.2f |\n", c, p, p50[p, c], p99[p, c], a50, a99, r50, r99, p50[p, c] / p50["direct", c], p99[p, c] / p99["direct", c]
            }
        }' "$WORK/rpc.md"
    echo
# The SPEC ratios from interleaved rounds: a ratio of two differences of latencies is noisy (a
# direct run that happens to be slow shrinks nginx's "added" figure), and drift over the minutes
# the table above takes favours whichever path ran in a quiet moment. Each round runs every path
# once at 1,000 req/s; the verdict uses the median over rounds.
log "1/6 request path: $RPC_ROUNDS interleaved rounds at 1,000 req/s"
: > "$WORK/rounds.md"
for r in $(seq "$RPC_ROUNDS"); do
    for p in $PATHS; do
        "$BENCH" rpc --url "$(url_a "$p")" --label "$p" --rates 1000 --clients 1,10 --spin-us "$RPC_SPIN_US" \
            --duration "$RPC_SECONDS" 2>>"$WORK/notes" | sed "s/^/$r /" >> "$WORK/rounds.md"
    done
done
awk -F'|' -v rounds="$RPC_ROUNDS" -v secs="$RPC_SECONDS" -v spin="$RPC_SPIN_US" '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function lo(list,    n, v, i, m) { n = split(list, v, " "); m = v[1] + 0; for (i = 2; i <= n; i++) if (v[i] + 0 < m) m = v[i] + 0; return m }
    function hi(list,    n, v, i, m) { n = split(list, v, " "); m = v[1] + 0; for (i = 2; i <= n; i++) if (v[i] + 0 > m) m = v[i] + 0; return m }
    {
        r = $1 + 0; p = $2; c = $3; gsub(/ /, "", p); gsub(/ /, "", c)
        p50[r, p, c] = $9 + 0; p99[r, p, c] = $10 + 0
        if (!(p in seen)) { seen[p] = 1; paths[++np] = p }
        if (!(c in seenc)) { seenc[c] = 1; cls[++nc] = c }
        if (r > nr) nr = r
    }
    END {
        printf "SPEC ratios from %d interleaved rounds (each round: every path at 1,000 req/s for %s s, 1 and 10\n", nr, secs
        printf "clients; the sender spins the last %s µs before each send). Added = path minus direct in the same\n", spin
        print "round; medians over rounds; the ratio columns give median added / median nginx added, and the"
        print "range of the per-round ratios."
        print ""
        print "| clients | path | p50 µs (median) | p99 µs (median) | added p50 µs | added p99 µs | added p50 / nginx added | per-round range | added p99 / nginx added | per-round range |"
        print "|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= nc; i++) for (j = 1; j <= np; j++) {
            c = cls[i]; p = paths[j]
            l50 = l99 = a50 = a99 = n50 = n99 = q50 = q99 = ""
            for (r = 1; r <= nr; r++) {
                l50 = l50 " " p50[r, p, c]; l99 = l99 " " p99[r, p, c]
                d50 = p50[r, p, c] - p50[r, "direct", c]; d99 = p99[r, p, c] - p99[r, "direct", c]
                e50 = p50[r, "nginx", c] - p50[r, "direct", c]; e99 = p99[r, "nginx", c] - p99[r, "direct", c]
                a50 = a50 " " d50; a99 = a99 " " d99; n50 = n50 " " e50; n99 = n99 " " e99
                if (e50 > 0) q50 = q50 " " d50 / e50
                if (e99 > 0) q99 = q99 " " d99 / e99
            }
            if (p == "direct") {
                printf "| %s | %s | %.1f | %.1f | – | – | – | – | – | – |\n", c, p, median(l50), median(l99)
                continue
            }
            m50 = median(a50); m99 = median(a99); nm50 = median(n50); nm99 = median(n99)
            r50 = (p == "nginx" || nm50 <= 0) ? "–" : sprintf("%.2f", m50 / nm50)
            r99 = (p == "nginx" || nm99 <= 0) ? "–" : sprintf("%.2f", m99 / nm99)
            g50 = (p == "nginx" || q50 == "") ? "–" : sprintf("%.2f–%.2f", lo(q50), hi(q50))
            g99 = (p == "nginx" || q99 == "") ? "–" : sprintf("%.2f–%.2f", lo(q99), hi(q99))
            printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", c, p, median(l50), median(l99), m50, m99, r50, g50, r99, g99
        }
    }' "$WORK/rounds.md"
echo
echo "<details><summary>Every round</summary>"
echo
requestPathHeaderRow="| round | path | clients | rate/s | sent | ok | err | lost | p50 µs | p99 µs | p99.9 µs | max µs | throughput/s | bench CPU |"
echo "$requestPathHeaderRow"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
sed 's/^\([0-9]*\) |/| \1 |/' "$WORK/rounds.md"
echo
echo "</details>"
echo
fi

# 2. fan-out
if want 2; then
    log "2/6 fan-out"
    echo "## 2. Fan-out: one hot channel (~550-byte ticker notifications) to 100 subscribers"
    echo
    echo "The simulator publishes (POST /sim/publish, paced) notifications carrying a sequence number and"
    echo "their scheduled time; latency is one way (scheduled publish -> received by the subscriber)."
    echo "'lost' counts notifications not received 3 s after the last was due."
    echo
    echo "Latency at a moderate rate (the bench reads as soon as data arrives):"
    echo
    first=1
    for p in $PATHS; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        "$BENCH" fanout "${hdr[@]}" --url "$(url_a "$p")" --sim-port "$PORT_sim_a" --label "$p" \
            --subscribers 100 --rates 500 --duration "$FAN_SECONDS" \
            --server-pid "$(pid_a "$p")" --sim-pid "$PID_sim_a" 2>>"$WORK/notes"
    done
    echo
    echo "Throughput sweep (publish rate raised until a run loses, reorders or falls behind, p99 > 20 ms; the bench"
    echo "sleeps ${FAN_BATCH_US} µs between reads so that each recv takes several messages, which adds up"
    echo "to that much to the latencies below):"
    echo
    first=1
    for p in $PATHS; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        "$BENCH" fanout "${hdr[@]}" --url "$(url_a "$p")" --sim-port "$PORT_sim_a" --label "$p" \
            --subscribers 100 --rates "$FAN_RATES" --duration "$FAN_SECONDS" --batch-us "$FAN_BATCH_US" \
            --server-pid "$(pid_a "$p")" --sim-pid "$PID_sim_a" 2>>"$WORK/notes"
    done
    echo
fi

# 3. mix
if want 3; then
    log "3/6 Deribit-like mix"
    echo "## 3. Deribit-like mix: 200 channels, ~4,500 notifications/s upstream, 20 clients"
    echo
    echo "50 instruments x (ticker, trades, book, grouped book) at 22.5 steps/s; each client holds 50"
    echo "channels (each channel has 5 holders); one more connection joins and leaves a 400-level book"
    echo "every 0.5 s (a 15-30 KB snapshot each time). Measured over ${MIX_SECONDS} s after 1 s of settling."
    echo "'server' is the relaying process (direct: the simulator itself). 'sim notif/s sent' is what"
    echo "the simulator sent in all: through a gateway that is the upstream rate."
    echo
    first=1
    for p in $PATHS; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        "$BENCH" mix "${hdr[@]}" --url "$(url_b "$p")" --sim-port "$PORT_sim_b" --instruments "$MIX_INSTRUMENTS" \
            --clients 20 --duration "$MIX_SECONDS" --server-pid "$(pid_b "$p")" --sim-pid "$PID_sim_b" --label "$p" 2>>"$WORK/notes"
    done
    echo
fi

# 4. connections
if want 4; then
    log "4/6 connections"
    echo "## 4. Connections: $CONNS idle WebSocket clients"
    echo
    echo "128 handshakes in flight; RSS of the relaying process before and 2 s after the last handshake"
    echo "(direct: the simulator's RSS). 'still open': clients the server had not closed when measured."
    [ "$NGINX_CONNS" != "$CONNS" ] && echo "nginx gets $NGINX_CONNS clients: it needs two descriptors per client and the hard limit is $(ulimit -Hn)."
    echo
    first=1
    for p in $PATHS; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        n=$CONNS; [ "$p" = nginx ] && n=$NGINX_CONNS
        "$BENCH" conns "${hdr[@]}" --url "$(url_a "$p")" --count "$n" --server-pid "$(pid_a "$p")" --label "$p" 2>>"$WORK/notes"
        sleep 2  # let the closes settle before the next path
    done
    echo
fi

# 5. start-up
if want 5; then
    log "5/6 start-up"
    echo "## 5. Start-up: process start to GET /health 200 (upstream ready) against the simulator"
    echo
    "$BENCH" startup --header --gateway "$BIN/deribit-gateway" --config "$WORK/gw-a-dispatch.json" --runs 5 --label "deribit-gateway (dispatch)"
    "$BENCH" startup --gateway "$BIN/deribit-gateway" --config "$WORK/gw-a-epoll.json" --runs 5 --label "deribit-gateway (epoll)"
    echo
fi

# 6. allocations
if want 6; then
    log "6/6 allocations per forwarded notification"
    command -v cc >/dev/null 2>&1 || { echo "section 6 needs a C compiler (cc) for scripts/malloc-count.c" >&2; exit 1; }
    cc -O2 -shared -fPIC -o "$WORK/malloc-count.so" scripts/malloc-count.c
    echo "## 6. Allocations per forwarded notification"
    echo
    echo "Gateways started for this section run under an LD_PRELOAD shim (scripts/malloc-count.c) that counts"
    echo "every malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc and pvalloc of the"
    echo "process (all threads); SIGUSR2 makes it write the count, read only at the edges of each window."
    echo "Hot channel: $ALLOC_SUBSCRIBERS subscribers; $ALLOC_WARMUP notifications published and received first (warm-up);"
    echo "then the idle window (nothing published; the simulator's own ~1/s tick goes on), as long as the hot"
    echo "window: $ALLOC_COUNT notifications published at $ALLOC_RATE/s, ended when every subscriber has all of them."
    echo "Mix: a second gateway on the mix simulator, 20 clients as in section 3 but no churn connection (no"
    echo "client requests in the window), ${ALLOC_MIX_SECONDS} s after 2 s of settling; upstream notifications are the"
    echo "simulator's notifications_sent. The last column subtracts the idle window's allocations/s x seconds."
    echo
    first=1
    for loop in dispatch epoll; do
        hdr=(); [ $first = 1 ] && hdr=(--header); first=0
        for sim in a b; do
            start "gw-alloc-$sim-$loop" env MALLOC_COUNT_FILE="$WORK/gw-alloc-$sim-$loop.count" LD_PRELOAD="$WORK/malloc-count.so" \
                "$BIN/deribit-gateway" --config "$WORK/gw-$sim-$loop.json" --log-level warning
        done
        pa="PID_gw_alloc_a_$loop" pb="PID_gw_alloc_b_$loop" qa="PORT_gw_alloc_a_$loop" qb="PORT_gw_alloc_b_$loop"
        wait_health "${!qa}"; wait_health "${!qb}"
        "$BENCH" allocs "${hdr[@]}" --label "gw-$loop" \
            --url "ws://127.0.0.1:${!qa}/ws/api/v2" --sim-port "$PORT_sim_a" --server-pid "${!pa}" \
            --count-file "$WORK/gw-alloc-a-$loop.count" --subscribers "$ALLOC_SUBSCRIBERS" \
            --warmup "$ALLOC_WARMUP" --count "$ALLOC_COUNT" --rate "$ALLOC_RATE" \
            --mix-url "ws://127.0.0.1:${!qb}/ws/api/v2" --mix-sim-port "$PORT_sim_b" --mix-server-pid "${!pb}" \
            --mix-count-file "$WORK/gw-alloc-b-$loop.count" --instruments "$MIX_INSTRUMENTS" \
            --mix-clients 20 --mix-seconds "$ALLOC_MIX_SECONDS" 2>>"$WORK/notes" \
            || { cat "$WORK/notes" >&2; exit 1; }
        stop "gw-alloc-a-$loop"; stop "gw-alloc-b-$loop"
    done
    echo
fi

if [ -s "$WORK/notes" ]; then
    echo "## Notes from the load generator"
    echo
    sed 's/^/- /' "$WORK/notes"
    echo
fi
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
log "done"
