//! `labctl audit listeners`: every socket that waits for others (listening TCP, unconnected
//! bound UDP), read from the kernel's tables (`/proc/net/{tcp,tcp6,udp,udp6}`), with the
//! process that holds it when it can be found. Anything not bound to a loopback address is a
//! finding unless `--allow` names it.

use std::{
    collections::HashMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    process::ExitCode,
};

use anyhow::{anyhow, Context};

use super::{args::ListenersArgs, verdict};
use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A socket waiting for others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

impl Listener {
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }

    pub fn endpoint(&self) -> String {
        match self.addr {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6, four little-endian words), then the port.
fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(addr, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut bytes = [0u8; 16];
            for word in 0..4 {
                let value = u32::from_str_radix(&addr[word * 8..word * 8 + 8], 16).ok()?;
                bytes[word * 4..word * 4 + 4].copy_from_slice(&value.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((addr, port))
}

/// The waiting sockets of one table: TCP in state LISTEN (0A), UDP unconnected (state 07,
/// no remote address).
pub fn parse_table(text: &str, proto: Proto) -> anyhow::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 10 {
            return Err(anyhow!("line {}: too few fields: `{line}`", number + 1));
        }
        let (addr, port) = parse_endpoint(fields[1]).ok_or_else(|| {
            anyhow!(
                "line {}: cannot read the address `{}`",
                number + 1,
                fields[1]
            )
        })?;
        let (_, remote_port) = parse_endpoint(fields[2]).ok_or_else(|| {
            anyhow!(
                "line {}: cannot read the address `{}`",
                number + 1,
                fields[2]
            )
        })?;
        let waiting = match proto {
            Proto::Tcp => fields[3] == "0A",
            Proto::Udp => fields[3] == "07" && remote_port == 0,
        };
        if waiting {
            out.push(Listener {
                proto,
                addr,
                port,
                inode: fields[9].parse().unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Every waiting socket of the tables under `dir` (missing tables, e.g. without IPv6, are
/// empty).
pub fn read_listeners(dir: &Path) -> anyhow::Result<Vec<Listener>> {
    let mut all = Vec::new();
    let mut read_any = false;
    for (file, proto) in [
        ("tcp", Proto::Tcp),
        ("tcp6", Proto::Tcp),
        ("udp", Proto::Udp),
        ("udp6", Proto::Udp),
    ] {
        let path = dir.join(file);
        match fs::read_to_string(&path) {
            Ok(text) => {
                read_any = true;
                all.extend(parse_table(&text, proto).with_context(|| path.display().to_string())?);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
        }
    }
    if !read_any {
        return Err(anyhow!(
            "no socket table (tcp, tcp6, udp, udp6) in {}",
            dir.display()
        ));
    }
    all.sort();
    all.dedup();
    Ok(all)
}

/// Socket inode → the process holding it (`comm[pid]`), from /proc/*/fd; what cannot be
/// read (other users' processes without privileges) is left out.
pub fn socket_owners() -> HashMap<u64, String> {
    let mut owners = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return owners;
    };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    owners.insert(inode, format!("{comm}[{pid}]"));
                }
            }
        }
    }
    owners
}

/// An `--allow` entry: `ADDR:PORT`, `*:PORT`, `[V6]:PORT`, optionally `/tcp` or `/udp`.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    proto: Option<Proto>,
    addr: Option<IpAddr>,
    port: u16,
}

impl Allowed {
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let bad = || {
            anyhow!("--allow `{spec}`: expected ADDR:PORT, *:PORT or [ADDR]:PORT, optionally ending in /tcp or /udp")
        };
        let (rest, proto) = match spec.trim().rsplit_once('/') {
            Some((rest, "tcp")) => (rest, Some(Proto::Tcp)),
            Some((rest, "udp")) => (rest, Some(Proto::Udp)),
            Some(_) => return Err(bad()),
            None => (spec.trim(), None),
        };
        let (addr, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let addr = match addr {
            "*" => None,
            a => {
                // IPv6 only in brackets, so the port cannot be mistaken for part of it.
                let inner = match a.strip_prefix('[') {
                    Some(rest) => rest.strip_suffix(']').ok_or_else(bad)?,
                    None if a.contains(':') => return Err(bad()),
                    None => a,
                };
                Some(inner.parse::<IpAddr>().map_err(|_| bad())?)
            }
        };
        Ok(Self { proto, addr, port })
    }

    pub fn covers(&self, l: &Listener) -> bool {
        self.port == l.port
            && self.proto.is_none_or(|p| p == l.proto)
            && self.addr.is_none_or(|a| a == l.addr)
    }
}

/// The findings: listeners off loopback that no `--allow` covers.
pub fn judge(
    listeners: &[Listener],
    allowed: &[Allowed],
    owners: &HashMap<u64, String>,
) -> Vec<String> {
    listeners
        .iter()
        .filter(|l| !l.is_loopback() && !allowed.iter().any(|a| a.covers(l)))
        .map(|l| {
            format!(
                "{} {} ({}) listens off loopback and no --allow names it",
                l.proto.name(),
                l.endpoint(),
                owners
                    .get(&l.inode)
                    .map(String::as_str)
                    .unwrap_or("process unknown")
            )
        })
        .collect()
}

pub fn command(args: &ListenersArgs) -> anyhow::Result<ExitCode> {
    let allowed = args
        .allow
        .iter()
        .map(|a| Allowed::parse(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let listeners = read_listeners(&args.proc_net)?;
    let owners = socket_owners();
    let mut table = Table::new(&["PROTO", "ADDRESS", "PROCESS", "VERDICT"]);
    for l in &listeners {
        let verdict = if l.is_loopback() {
            "loopback"
        } else if allowed.iter().any(|a| a.covers(l)) {
            "allowed"
        } else {
            "NOT ALLOWED"
        };
        table.row(vec![
            l.proto.name().to_owned(),
            l.endpoint(),
            owners.get(&l.inode).cloned().unwrap_or_else(|| "?".into()),
            verdict.to_owned(),
        ]);
    }
    print!("{}", table.render());
    verdict("listeners", &judge(&listeners, &allowed, &owners))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<Listener> {
        read_listeners(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit/proc-net"))
            .unwrap()
    }

    #[test]
    fn the_kernel_tables_give_the_waiting_sockets_only() {
        let found: Vec<String> = fixtures()
            .iter()
            .map(|l| format!("{} {}", l.proto.name(), l.endpoint()))
            .collect();
        assert_eq!(
            found,
            [
                "tcp 0.0.0.0:8080",
                "tcp 127.0.0.1:3000",
                "tcp [::]:5432",
                "tcp [::1]:9090",
                "tcp [::ffff:127.0.0.1]:3300",
                "udp 0.0.0.0:68",
                "udp 127.0.0.1:53",
            ]
        );
        let loopback: Vec<bool> = fixtures().iter().map(Listener::is_loopback).collect();
        assert_eq!(loopback, [false, true, false, true, true, false, true]);
    }

    #[test]
    fn listeners_off_loopback_need_an_allow() {
        let listeners = fixtures();
        let owners = HashMap::from([(1002, "shop-api[42]".to_owned())]);
        let findings = judge(&listeners, &[], &owners);
        assert_eq!(
            findings,
            [
                "tcp 0.0.0.0:8080 (shop-api[42]) listens off loopback and no --allow names it",
                "tcp [::]:5432 (process unknown) listens off loopback and no --allow names it",
                "udp 0.0.0.0:68 (process unknown) listens off loopback and no --allow names it",
            ]
        );
        let allowed: Vec<Allowed> = ["0.0.0.0:8080/tcp", "[::]:5432", "*:68/udp"]
            .iter()
            .map(|a| Allowed::parse(a).unwrap())
            .collect();
        assert!(judge(&listeners, &allowed, &owners).is_empty());
        // The protocol, the address and the port must all match.
        for narrow in ["0.0.0.0:8080/udp", "127.0.0.1:8080", "*:8081"] {
            let a = Allowed::parse(narrow).unwrap();
            assert!(
                !a.covers(&listeners[0]),
                "{narrow} covers {:?}",
                listeners[0]
            );
        }
    }

    #[test]
    fn bad_allow_entries_and_tables_are_errors() {
        for bad in [
            "8080",
            "host:8080",
            "*:99999",
            "*:80/sctp",
            "[::1:80",
            "::1:80",
            "[::1]x:80",
        ] {
            assert!(Allowed::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_table("header\n 0: 0100007F:0BB8 00000000:0000\n", Proto::Tcp).is_err());
        assert!(parse_table(
            "header\n 0: zz:0BB8 00000000:0000 0A a b c d e 1\n",
            Proto::Tcp
        )
        .is_err());
        let empty = tempfile_dir();
        assert!(read_listeners(&empty).is_err());
        let _ = fs::remove_dir_all(&empty);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("labctl-listeners-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
