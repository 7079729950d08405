# shellcheck shell=sh
# /usr/lib/mxgate/network.sh: the address of the box from /data/etc/network
# (IFACE, VLAN, ADDRESS, GATEWAY, DNS; see provision.sh). Sourced by rcS
# after provision.sh, which read that file. mxgate itself adds and removes
# the VRRP virtual IPs on its [vrrp] interface.

setup_network() {
    ip link set lo up
    NET_IFACE=${IFACE:-eth0}
    if ! ip link set "$NET_IFACE" up 2>/dev/null; then
        echo "network: WARNING: no interface $NET_IFACE" >/dev/console
        return
    fi
    if [ -n "$VLAN" ]; then
        ip link add link "$NET_IFACE" name "$NET_IFACE.$VLAN" type vlan id "$VLAN"
        NET_IFACE=$NET_IFACE.$VLAN
        ip link set "$NET_IFACE" up
    fi
    : >/run/resolv.conf
    if [ "${ADDRESS:-dhcp}" = dhcp ]; then
        # Up to 3 tries in the foreground, then on in the background.
        udhcpc -i "$NET_IFACE" -b -t 3 -T 1 -S -x "hostname:$(hostname)" \
            -s /usr/share/udhcpc/default.script -p /run/udhcpc.pid >/dev/null 2>&1
    else
        ip addr add "$ADDRESS" dev "$NET_IFACE"
        [ -n "$GATEWAY" ] && ip route add default via "$GATEWAY"
        for s in $DNS; do echo "nameserver $s" >>/run/resolv.conf; done
    fi
    echo "NET_IFACE=$NET_IFACE" >>/run/boot.env
}

# box_address: the first IPv4 address of the interface (without /N).
box_address() {
    ip -4 -o addr show dev "$NET_IFACE" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}
