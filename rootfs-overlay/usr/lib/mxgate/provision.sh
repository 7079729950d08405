# shellcheck shell=sh
# /usr/lib/mxgate/provision.sh: the box's own files in /data/etc. Sourced
# by rcS after data.sh.
#
#   /data/etc/node.toml     the node file mxgate runs with
#   /data/etc/network       its address (sh variables, see below)
#   /data/etc/policy.toml   a policy to import (once per content) at service start
#
# Provisioning source: QEMU's fw_cfg (-fw_cfg name=opt/mxgate/FILE,file=...)
# replaces these files at every boot when given. Without it, the files in
# /data/etc stay as they are (edited on the console or written by the UI),
# and a missing one gets a default: the node named after the NIC's MAC
# address, the network by DHCP on eth0.

FW_CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/mxgate

provision() {
    for f in node.toml network policy.toml; do
        if [ -r "$FW_CFG/$f/raw" ]; then
            cp "$FW_CFG/$f/raw" "/data/etc/.$f.new" && mv "/data/etc/.$f.new" "/data/etc/$f"
            echo "provision: /data/etc/$f from fw_cfg"
        fi
    done
    [ -s /data/etc/network ] || default_network >/data/etc/network
    [ -s /data/etc/node.toml ] || default_node >/data/etc/node.toml
    . /data/etc/network
    NODE_NAME=$(sed -n 's/^name *= *"\(.*\)".*/\1/p' /data/etc/node.toml)
    hostname "${NODE_NAME:-mxgate}"
}

default_network() {
    cat <<NET
# /data/etc/network: the box's address (read by rcS at boot).
# IFACE: the NIC; VLAN: an 802.1Q id on it (optional);
# ADDRESS: dhcp, or A.B.C.D/N with GATEWAY and DNS (space separated).
IFACE=eth0
VLAN=
ADDRESS=dhcp
GATEWAY=
DNS=
NET
}

# default_node: a node file for an unprovisioned box. The web listener is
# on every address, unless this mxgate still refuses that (its API was
# loopback-only before the HTTPS UI), then on loopback.
default_node() {
    mac=$(tr -d ':\n' </sys/class/net/eth0/address 2>/dev/null | tail -c 6)
    for web in 0.0.0.0:443 127.0.0.1:8443; do
        node_toml "mxgate-${mac:-box}" "$web" >/run/node.toml.try
        mxgate check-config --config /run/node.toml.try >/dev/null 2>&1 && break
    done
    cat /run/node.toml.try
}

node_toml() {
    cat <<NODE
# /data/etc/node.toml: this box's node file (see the README's settings reference).
name = "$1"
data_dir = "/data/mxgate"

[web]
listen = "$2"

[metrics]
listen = "127.0.0.1:9100"
NODE
}
