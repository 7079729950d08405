# shellcheck shell=sh
# /usr/lib/mxgate/banner.sh: logging and the console banner. Sourced by rcS.

# start_logging: syslogd keeps the log in a 256 KiB ring buffer in shared
# memory (Debian's busybox syslogd cannot rotate files), read with
# `logread` (the UI runs it); klogd adds the kernel's messages. mxgate's
# lines reach it through logger (see mxgate-service) and the console too.
start_logging() {
    syslogd -C256
    klogd -c 3
}

# web_url: the web UI's URL from the node file's [web] listen.
web_url() {
    listen=$(awk '/^\[/ { s = $0 } s == "[web]" && /^listen/ { gsub(/[" ]/, "", $0); sub(/^listen=/, ""); print; exit }' \
        /data/etc/node.toml)
    [ -n "$listen" ] || { echo "(no [web] listener)"; return; }
    host=${listen%:*} port=${listen##*:}
    case $host in
    0.0.0.0 | "[::]") host=$(box_address) ;;
    127.* | "[::1]") echo "https://$listen/ (loopback only)"; return ;;
    esac
    [ "$port" = 443 ] && echo "https://${host:-ADDRESS}/" || echo "https://${host:-ADDRESS}:$port/"
}

print_banner() {
    . /etc/os-release
    addr=$(ip -4 -o addr show dev "$NET_IFACE" 2>/dev/null | awk '{ print $4; exit }')
    cat >/dev/console <<BANNER

==== $PRETTY_NAME ==== (up $(cut -d' ' -f1 /proc/uptime) s)
  box:      $(hostname)   boot: ${MODE}${SLOT:+ slot $SLOT}$([ "$SLOT_FALLBACK" = 1 ] && echo ' (FALLBACK: the active slot did not mount)')   /data: ${DATA_DEV:-none} (persistent: $DATA_PERSISTENT)
  address:  ${addr:-none yet (DHCP in the background)} on $NET_IFACE
  web UI:   $(web_url)
  files:    /data/etc/node.toml, /data/etc/network; log: logread
  The one-time setup code appears below in mxgate's log ("setup code: ...").
  Press Enter for a maintenance shell.

BANNER
}
