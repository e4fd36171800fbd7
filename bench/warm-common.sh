# Sourced by bench/warm.sh and bench/warm-vip.sh: the node's config and the report of a
# window after an event against the steady one.

gh_toml() { # dir listen admin extra-cache-lines: a node's config, its state in dir
  cat <<TOML
[server]
threads = 1
state_dir = "$1"
upgrade_socket = "$1/upgrade.sock"
pid_file = "$1/gh.pid"
grace_period = "1s"
shutdown_timeout = "5s"
[admin]
address = "$3"
token = "bench-token-0123456789"
[cache]
max_size = "1g"
$4
[[listeners]]
address = "$2"
[pools.web.health]
enabled = false
[[pools.web.servers]]
name = "web1"
address = "127.0.0.1:19001"
[[routes]]
pool = "web"
TOML
}

ratio() { awk -v h="$1" -v m="$2" 'BEGIN { if (h + m == 0) print "-"; else printf "%.3f", h / (h + m) }'; }

# One report line: the labels, then the steady and after hit ratios, their ratio, and the
# misses of each window, from the counts h0 m0 (steady start) h1 m1 (steady end) h2 m2
# (after start) h3 m3 (after end), passed last.
report() {
  local labels=("${@:1:$#-8}") c=("${@:$#-7}")
  local steady after rel
  steady=$(ratio $((c[2] - c[0])) $((c[3] - c[1])))
  after=$(ratio $((c[6] - c[4])) $((c[7] - c[5])))
  rel=$(awk -v a="$after" -v s="$steady" 'BEGIN { if (s == "-" || s == 0) print "-"; else printf "%.2f", a / s }')
  local IFS=$'\t'
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${labels[*]}" "$steady" "$after" "$rel" \
    $((c[3] - c[1])) $((c[7] - c[5]))
}
