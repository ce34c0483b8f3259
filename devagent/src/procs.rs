//! Which local process is at the other end of a loopback TCP connection, and what it runs.
//!
//! The agent decides trust per process (its registry of launched processes, and a signature
//! check for the others), so the stand-in must know the process behind each connection. On
//! Linux the kernel says it: `/proc/net/tcp{,6}` maps the client's socket to an inode, and
//! `/proc/{pid}/fd` maps the inode to the processes holding it. No crate does this lookup for
//! one socket (`procfs` lists everything and brings a large tree), so it is read here: two
//! text tables and a directory walk. Elsewhere the lookup reports itself unavailable, and the
//! registry refuses to start rather than trust everyone without saying so.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The processes holding the client end of the connection `client` → `server` (several when
/// a socket was inherited across fork). Errors say why the lookup could not be made.
#[cfg(target_os = "linux")]
pub(crate) fn socket_owners(client: SocketAddr, server: SocketAddr) -> Result<Vec<u32>, String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .find_map(|table| find_inode(&table, client, server))
        .ok_or_else(|| {
            format!("no socket {client} -> {server} in /proc/net/tcp (the client closed it?)")
        })?;
    let wanted = format!("socket:[{inode}]");
    let mut owners = Vec::new();
    let procs = std::fs::read_dir("/proc").map_err(|e| format!("reading /proc: {e}"))?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // Processes of other users (without root) and ones that just exited are unreadable:
        // they cannot be the owner we are looking for, or are gone.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()))
        {
            owners.push(pid);
        }
    }
    if owners.is_empty() {
        return Err(format!(
            "no process holds socket inode {inode} ({client} -> {server}): it exited, or runs \
             as another user than the devagent"
        ));
    }
    Ok(owners)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn socket_owners(_client: SocketAddr, _server: SocketAddr) -> Result<Vec<u32>, String> {
    Err(UNAVAILABLE.to_string())
}

/// Why the registry cannot run on this OS.
#[cfg(not(target_os = "linux"))]
pub(crate) const UNAVAILABLE: &str =
    "finding the process behind a connection is implemented on Linux only (/proc)";

/// Whether [`socket_owners`] works on this OS.
pub(crate) fn attribution_available() -> bool {
    cfg!(target_os = "linux")
}

/// The executable a process runs (`/proc/{pid}/exe`).
pub(crate) fn exe_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Whether `exe` is Wine's loader: a Windows program under Wine reports Wine's own process id,
/// which Linux does not show, so its client id cannot be compared with the Linux pid.
pub(crate) fn is_wine(exe: &std::path::Path) -> bool {
    exe.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("wine"))
}

/// The inode of the socket whose local address is `client` and remote address `server`, in
/// one `/proc/net/tcp{,6}` table.
#[cfg(any(target_os = "linux", test))]
fn find_inode(table: &str, client: SocketAddr, server: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
        (parse_addr(local)? == client && parse_addr(remote)? == server)
            .then(|| inode.parse().ok())
            .flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the address bytes as the kernel
/// prints them, one native-endian 32-bit word at a time.
#[cfg(any(target_os = "linux", test))]
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..ip.len()).step_by(8) {
        let word = u32::from_str_radix(ip.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes.as_slice()).ok()?.into(),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes.as_slice()).ok()?);
            // A v4 client of a dual-stack listener appears as ::ffff:a.b.c.d.
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn kernel_addresses_parse() {
        assert_eq!(
            parse_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().expect("addr"))
        );
        assert_eq!(parse_addr("zz:1"), None);
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1\n";
        let client = "127.0.0.1:40960".parse().expect("addr");
        let server = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(find_inode(table, client, server), Some(4242));
        assert_eq!(find_inode(table, server, client), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn finds_this_process_behind_its_own_connection() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = l.local_addr().expect("addr");
        let c = std::net::TcpStream::connect(server).expect("connect");
        let (_s, client) = l.accept().expect("accept");
        assert_eq!(client, c.local_addr().expect("addr"));
        let owners = socket_owners(client, server).expect("owners");
        assert_eq!(owners, vec![std::process::id()]);
        assert_eq!(exe_of(std::process::id()), std::env::current_exe().ok());
    }
}
