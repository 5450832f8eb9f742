#!/usr/bin/env bash
# cluster.sh - the project's one-node Kubernetes cluster for tests and developers, on loopback.
#
#   cluster.sh up      build the binaries once (build.sh), then start etcd, kube-apiserver,
#                      kube-controller-manager, kube-scheduler, cri-dockerd (in front of the local
#                      Docker engine) and a kubelet; wait until the node is Ready; print the line
#                      to eval:  export KUBECONFIG=<state>/admin.kubeconfig
#   cluster.sh down    stop every process `up` started (by pid), remove the pods' containers and
#                      the state directory
#   cluster.sh status  processes, their RSS, the node; exit 3 when not running
#   cluster.sh env     print the export line
#
# Everything listens on 127.0.0.1 (ports picked free at `up`). There is no kube-proxy and no pod
# network: pods must use hostNetwork (KubernetesContainerManager(use_host_network=True)); Service
# objects exist but nothing sends traffic to cluster IPs. Images come from the local Docker engine
# (`make docker-images`), so pods use imagePullPolicy IfNotPresent. The pod sandbox ("pause")
# image is built locally from ./pause.
#
# Environment: CLIPPER_K8S_STATE (default /var/tmp/clipper-k8s), DOCKER_HOST (default
# unix:///var/run/docker.sock), CLIPPER_K8S_CACHE (see build.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${CLIPPER_K8S_STATE:-/var/tmp/clipper-k8s}
# The node is named by its address: a kubelet refuses a loopback --node-ip, but takes the address
# of a --hostname-override that is an IP as is.
NODE_NAME=127.0.0.1
DOCKER_ENDPOINT=${DOCKER_HOST:-unix:///var/run/docker.sock}
PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_FILE=$STATE/admin.kubeconfig
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler k8s-dockerapi cri-dockerd kubelet)
SERVICE_CIDR=10.96.0.0/24   # Service objects get cluster IPs from it; nothing connects to them

log() { printf '[k8s-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pid_of() {  # the live pid of a component started by `up`, or nothing
    local pid
    [ -f "$PIDS/$1" ] || return 1
    pid=$(cat "$PIDS/$1")
    # Guards against pid reuse. (No `| grep -q`: under pipefail its early exit can fail the pipe.)
    [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *"$STATE"* ]] || return 1
    echo "$pid"
}

start() {  # start NAME CMD...: in its own session, output to logs/NAME.log, pid to pids/NAME
    local name=$1
    shift
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name"
}

api() {  # api PATH: GET from the API server as the admin
    curl -sf --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$(cat "$STATE/apiserver-port")$1"
}

wait_for() {  # wait_for WHAT SECONDS COMPONENT CMD...: until CMD succeeds or COMPONENT dies
    local what=$1 limit=$2 component=$3 end pid
    shift 3
    end=$((SECONDS + limit))
    pid=$(cat "$PIDS/$component")
    until "$@" >/dev/null 2>&1; do
        # COMPONENT is this shell's child, started by this `up`, and its pid is not handed out
        # again within a wait, so kill -0 tells whether it lives. (pid_of's cmdline check raced
        # the exec: before it the cmdline is this script's, and it reads empty during one, so
        # live components were reported dead with an empty log.)
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOGS/$component.log" >&2 || true
            die "$component exited while waiting for $what (log: $LOGS/$component.log)"
        fi
        [ "$SECONDS" -lt "$end" ] || { tail -n 30 "$LOGS/$component.log" >&2; die "no $what after ${limit}s"; }
        sleep 1
    done
}

# ------------------------------------------------------------------------------- certificates

make_pki() {
    mkdir -p "$PKI"
    cd "$PKI"
    openssl genrsa -out ca.key 2048 2>/dev/null
    openssl req -x509 -new -nodes -key ca.key -subj "/CN=clipper-k8s-ca" -days 3650 -out ca.crt
    cat >apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    cat >client.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    local name subject ext
    for name in apiserver admin; do
        if [ "$name" = apiserver ]; then subject="/CN=kube-apiserver" ext=apiserver.ext
        else subject="/O=system:masters/CN=clipper-admin" ext=client.ext; fi
        openssl genrsa -out "$name.key" 2048 2>/dev/null
        openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
        openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile "$ext" -out "$name.crt" 2>/dev/null
    done
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cd - >/dev/null
}

write_kubeconfig() {
    cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: clipper-k8s
  cluster:
    server: https://127.0.0.1:$1
    certificate-authority: $PKI/ca.crt
users:
- name: clipper-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: clipper-k8s
  context:
    cluster: clipper-k8s
    user: clipper-admin
current-context: clipper-k8s
EOF
}

write_kubelet_config() {  # the kubelet's configuration file; cgroup v1 needs failCgroupV1: false
    cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $2
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$STATE/cri-dockerd.sock
cgroupDriver: $3
failCgroupV1: false
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
# The images belong to the shared Docker engine: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
maxPods: 110
registerNode: true
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
}

# ------------------------------------------------------------------------------- up / down

pause_image() {  # the sandbox image, built from the pause program (no registry here)
    local bin=$1 tag ctx
    tag="clipper/k8s-pause:$(sha256sum "$bin/k8s-pause" | cut -c1-12)"
    if ! docker -H "$DOCKER_ENDPOINT" image inspect "$tag" >/dev/null 2>&1; then
        ctx=$(mktemp -d)
        cp "$bin/k8s-pause" "$ctx/pause"
        printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
        docker -H "$DOCKER_ENDPOINT" build -q -t "$tag" "$ctx" >/dev/null
        rm -rf "$ctx"
    fi
    echo "$tag"
}

cmd_up() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (the kubelet manages containers and mounts)"
    if pid_of kube-apiserver >/dev/null; then
        log "already running"
        echo "export KUBECONFIG=$KUBECONFIG_FILE"
        return 0
    fi
    command -v etcd >/dev/null || die "etcd not found (apt-get install etcd-server)"
    command -v openssl >/dev/null || die "openssl not found"
    docker -H "$DOCKER_ENDPOINT" info >/dev/null 2>&1 ||
        die "no Docker engine answers at $DOCKER_ENDPOINT (start one: ../shared/docker/local-engine.sh start)"
    local bin t0 driver pause
    bin=$("$HERE/build.sh")
    t0=$SECONDS
    cmd_down >/dev/null 2>&1 || true
    # A failed start stops what it started (the logs are kept in $STATE.failed for a look).
    trap 'log "start failed; stopping what was started"; keep_logs; cmd_down' EXIT
    mkdir -p "$STATE" "$LOGS" "$PIDS"
    make_pki
    pause=$(pause_image "$bin")
    driver=$(docker -H "$DOCKER_ENDPOINT" info --format '{{.CgroupDriver}}')

    local etcd_port etcd_peer etcd_metrics api_port kubelet_port kubelet_healthz
    etcd_port=$(free_port) etcd_peer=$(free_port) etcd_metrics=$(free_port)
    api_port=$(free_port) kubelet_port=$(free_port) kubelet_healthz=$(free_port)
    echo "$api_port" >"$STATE/apiserver-port"
    write_kubeconfig "$api_port"
    write_kubelet_config "$kubelet_port" "$kubelet_healthz" "$driver"

    start etcd etcd --name clipper --data-dir "$STATE/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "clipper=http://127.0.0.1:$etcd_peer" --listen-metrics-urls "http://127.0.0.1:$etcd_metrics"
    wait_for etcd 30 etcd curl -sf "http://127.0.0.1:$etcd_port/health"

    start kube-apiserver "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" --kubelet-client-certificate="$PKI/admin.crt" \
        --kubelet-client-key="$PKI/admin.key" --kubelet-preferred-address-types=InternalIP,Hostname \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-account-issuer=https://kubernetes.default.svc --api-audiences=https://kubernetes.default.svc \
        --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=RBAC --allow-privileged=true \
        --endpoint-reconciler-type=none --cert-dir="$STATE/apiserver" --profiling=false
    wait_for "API server" 120 kube-apiserver api /readyz

    local kc=$KUBECONFIG_FILE
    start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$kc" \
        --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" --leader-elect=false \
        --secure-port=0 --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --service-cluster-ip-range="$SERVICE_CIDR" --use-service-account-credentials=false \
        --profiling=false
    start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$kc" --authentication-kubeconfig="$kc" \
        --authorization-kubeconfig="$kc" --leader-elect=false --secure-port=0 --profiling=false

    # cri-dockerd v0.4 wants Docker API 1.42; bookworm's engine speaks 1.41 (see dockerapi/main.go).
    start k8s-dockerapi "$bin/k8s-dockerapi" -listen "$STATE/docker.sock" -engine "${DOCKER_ENDPOINT#unix://}"
    wait_for "engine API proxy" 30 k8s-dockerapi test -S "$STATE/docker.sock"
    mkdir -p "$STATE/cri-dockerd" "$STATE/kubelet"
    start cri-dockerd "$bin/cri-dockerd" --container-runtime-endpoint="unix://$STATE/cri-dockerd.sock" \
        --docker-endpoint="unix://$STATE/docker.sock" --cri-dockerd-root-directory="$STATE/cri-dockerd" \
        --pod-infra-container-image="$pause" --streaming-bind-addr=127.0.0.1:0 --network-plugin=
    wait_for "cri-dockerd socket" 30 cri-dockerd test -S "$STATE/cri-dockerd.sock"

    start kubelet "$bin/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$kc" \
        --hostname-override="$NODE_NAME" --root-dir="$STATE/kubelet" \
        --cert-dir="$STATE/kubelet/pki"
    wait_for "Ready node $NODE_NAME" 180 kubelet node_ready
    wait_for "default service account" 60 kube-controller-manager api /api/v1/namespaces/default/serviceaccounts/default
    trap - EXIT
    log "cluster up in $((SECONDS - t0))s (binaries in $bin); control plane + node RSS $(rss_mb) MB"
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

keep_logs() {
    rm -rf "$STATE.failed" && mkdir -p "$STATE.failed" && cp -r "$LOGS" "$STATE.failed/" 2>/dev/null || true
}

node_ready() {
    api "/api/v1/nodes/$NODE_NAME" | python3 -c '
import json, sys
node = json.load(sys.stdin)
ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
sys.exit(0 if ready and ready[0]["status"] == "True" else 1)'
}

rss_mb() {  # summed RSS of the running components, in MB
    local total=0 c pid rss
    for c in "${COMPONENTS[@]}"; do
        pid=$(pid_of "$c") || continue
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + rss))
    done
    echo $((total / 1024))
}

mounts_under() {  # mount points below directory $1, deepest first
    local dir
    dir=$(readlink -f "$1" 2>/dev/null || echo "$1")
    awk -v p="$dir/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r
}

cmd_down() {
    local c pid i m ids
    # The kubelet first, so it does not restart the containers removed below.
    for c in kubelet cri-dockerd k8s-dockerapi kube-scheduler kube-controller-manager kube-apiserver etcd; do
        pid=$(pid_of "$c") || continue
        log "stopping $c (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The pods' containers (sandboxes included), by the labels cri-dockerd puts on them.
    if docker -H "$DOCKER_ENDPOINT" info >/dev/null 2>&1; then
        ids=$(docker -H "$DOCKER_ENDPOINT" ps -aq --filter label=io.kubernetes.docker.type)
        if [ -n "$ids" ]; then
            log "removing $(echo "$ids" | wc -w) pod containers"
            # shellcheck disable=SC2086
            docker -H "$DOCKER_ENDPOINT" rm -f $ids >/dev/null || true
        fi
    fi
    for m in $(mounts_under "$STATE"); do umount -l "$m" 2>/dev/null || true; done
    if [ -d "$STATE" ]; then
        [ -z "$(mounts_under "$STATE")" ] || die "mounts remain under $STATE; not deleting it"
        rm -rf --one-file-system "$STATE"
    fi
    log "down"
}

cmd_status() {
    local c pid running=0
    for c in "${COMPONENTS[@]}"; do
        if pid=$(pid_of "$c"); then
            running=1
            echo "$c: pid $pid, RSS $(awk '/^VmRSS:/ {print $2 / 1024 " MB"}' "/proc/$pid/status")"
        else
            echo "$c: not running"
        fi
    done
    [ "$running" -eq 1 ] || return 3
    echo "total RSS: $(rss_mb) MB"
    node_ready && echo "node $NODE_NAME: Ready" || echo "node $NODE_NAME: not Ready"
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) [ -f "$KUBECONFIG_FILE" ] && echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
