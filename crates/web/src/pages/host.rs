//! The Dashboard's host panel: CPU, load, memory, the data directory's
//! disk, uptime and network interfaces of one [`HostReport`].

use super::dashboard::duration;
use maud::{html, Markup};
use mxgate_system::HostReport;

/// `1.5 GiB`, `512 MiB`, `12 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The host panel.
pub(crate) fn panel(h: &HostReport) -> Markup {
    html! {
        section.card aria-labelledby="host-h" {
            h2 #host-h { "Host" }
            div.grid {
                dl.facts {
                    dt { "Host name" } dd { (h.hostname.as_deref().unwrap_or("unknown")) }
                    dt { "Kernel" } dd { (h.kernel.as_deref().unwrap_or("unknown")) }
                    dt { "Up since boot" } dd { (duration(h.uptime_s)) }
                    dt { "CPU" } dd { (format!("{:.0} %", h.cpu.usage_percent)) " of " (h.cpu.count) " cores" }
                    dt { "Load" } dd { (format!("{:.2} {:.2} {:.2}", h.load.one, h.load.five, h.load.fifteen)) }
                }
                dl.facts {
                    dt { "Memory" } dd #memory-total {
                        (bytes(h.memory.used_bytes)) " used of " (bytes(h.memory.total_bytes))
                        " (" (format!("{:.0} %", h.memory.used_percent)) ")"
                    }
                    dt { "Swap" } dd { (bytes(h.memory.swap_used_bytes)) " of " (bytes(h.memory.swap_total_bytes)) }
                    @if let Some(d) = &h.disk {
                        dt { "Disk (data)" } dd {
                            (bytes(d.used_bytes)) " used, " (bytes(d.available_bytes)) " free ("
                            (format!("{:.0} %", d.used_percent)) ")"
                        }
                    }
                }
            }
            @for problem in &h.problems { p.notice.bad { (problem) } }
            div.scroll { table {
                caption.small.muted { "Network interfaces" }
                thead { tr { th { "Interface" } th { "State" } th { "Addresses" } th.hide-small { "Received" } th.hide-small { "Sent" } th.hide-small { "Errors" } } }
                tbody { @for i in &h.interfaces { tr {
                    td.mono { (i.name) }
                    td { @if i.up { (super::layout::badge("up")) } @else { (super::layout::badge("down")) } }
                    td.mono { @for (n, a) in i.addresses.iter().enumerate() { @if n > 0 { br; } (a.to_string()) } }
                    td.hide-small { (bytes(i.rx_bytes)) }
                    td.hide-small { (bytes(i.tx_bytes)) }
                    td.hide-small { (i.rx_errors + i.tx_errors) }
                } } }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn sizes_read_like_df_h() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
    }
}
