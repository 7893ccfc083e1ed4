# What the private RabbitMQ nodes of the tests have in common: sourced by
# amqp-node.sh (one node) and amqp-cluster.sh (three nodes). Bash.
# Callers set PY (a python3) before sourcing.

now_ms() { date +%s%3N; }

# kill -0 alone counts zombies as alive (an init that does not reap them).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    case $st in Z*) return 1 ;; esac
}

# free_ports N: N distinct free TCP ports chosen by the OS, on one line.
free_ports() {
    "$PY" - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PYEOF
}

# amqp_port_ready PORT: true once PORT answers the AMQP protocol header
# with connection.start.
amqp_port_ready() {
    "$PY" - "$1" <<'PYEOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.settimeout(2)
s.sendall(b"AMQP\x00\x00\x09\x01")
data = s.recv(11)
sys.exit(0 if len(data) >= 11 and data[0] == 1 and data[7:11] == b"\x00\x0a\x00\x0a" else 1)
PYEOF
}

# rmq_cmd HOME: RMQ_CMD, the command prefix that runs something in the
# environment of node NODENAME (NODE_DIR, DIST_PORT, EPMD_PORT), as the
# rabbitmq user when root. The Debian scripts would switch to that user
# themselves, with the system's environment and cookie; doing it here keeps
# HOME (the cookie) and the configuration private.
rmq_cmd() {
    RMQ_CMD=(env HOME="$1"
        RABBITMQ_NODENAME="$NODENAME"
        RABBITMQ_MNESIA_BASE="$NODE_DIR/mnesia"
        RABBITMQ_LOG_BASE="$NODE_DIR/log"
        RABBITMQ_PID_FILE="$NODE_DIR/pid"
        RABBITMQ_ENABLED_PLUGINS_FILE="$NODE_DIR/enabled_plugins"
        RABBITMQ_CONFIG_FILE="$NODE_DIR/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$NODE_DIR/advanced.config"
        RABBITMQ_CONF_ENV_FILE="$NODE_DIR/rabbitmq-env.conf"
        RABBITMQ_DIST_PORT="$DIST_PORT"
        ERL_EPMD_PORT="$EPMD_PORT"
        RABBITMQ_LOGS="$NODE_DIR/log/node.log")
    if [ "$(id -u)" = 0 ]; then
        RMQ_CMD=(runuser -u rabbitmq -- "${RMQ_CMD[@]}")
    fi
}

# node_files DIR PORT: the configuration of a node without plugins that
# listens for AMQP on PORT (callers append to DIR/rabbitmq.conf).
node_files() {
    mkdir -p "$1/mnesia" "$1/log"
    cat >"$1/rabbitmq.conf" <<CONF
listeners.tcp.default = $2
loopback_users = none
log.file.level = info
log.console = false
CONF
    echo '[].' >"$1/enabled_plugins"
    : >"$1/rabbitmq-env.conf"
}

# new_cookie HOME: a random Erlang cookie in HOME/.erlang.cookie, which the
# node and rabbitmqctl both read.
new_cookie() {
    od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$1/.erlang.cookie"
    chmod 400 "$1/.erlang.cookie"
}
