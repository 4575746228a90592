//! CPU time per part of the system (PostgreSQL, workers, gateway, this load generator),
//! from `/proc`: with everything on one machine, the split says where a request's cost is.

use std::{collections::HashMap, sync::OnceLock};

/// The postmaster of the PostgreSQL the tool started: only it and its children count as
/// `postgres`; other servers on the machine (other users' runs) count as `other`.
static POSTMASTER: OnceLock<u32> = OnceLock::new();

/// Counts only the server whose postmaster is `pid` as `postgres`.
pub(super) fn own_postgres(pid: u32) {
    let _ = POSTMASTER.set(pid);
}

/// CPU seconds per process id, with the part each process belongs to.
type Snapshot = HashMap<u32, (&'static str, f64)>;

pub(super) fn snapshot() -> Snapshot {
    let mut out = Snapshot::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state …`: utime and stime are fields 14 and 15.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<f64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        if fields.len() < 15 {
            continue;
        }
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        // Own time, plus for PostgreSQL the exited backends the postmaster waited for
        // (pgbench's connections end before the run is measured).
        let mut secs = (fields[11] + fields[12]) / ticks;
        if comm == "postgres" {
            secs += (fields[13] + fields[14]) / ticks;
        }
        // `state ppid …`: the parent is field 4.
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|f| f.parse::<u32>().ok());
        let ours = |pm: &u32| pid == *pm || ppid == Some(*pm);
        let part = if pid == me {
            "load generator"
        } else if comm == "postgres" {
            if POSTMASTER.get().is_none_or(ours) {
                "postgres"
            } else {
                "other"
            }
        } else if ppid != Some(me) {
            // Another user's stack on the same machine (their benches and e2e runs start
            // `openpartner worker` too): not ours.
            "other"
        } else {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let mut args = cmdline.split(|b| *b == 0).skip(1);
            match args.next() {
                Some(b"worker") => "workers",
                Some(b"gateway") => "gateway",
                _ => "other",
            }
        };
        out.insert(pid, (part, secs));
    }
    out
}

/// CPU seconds of this process's exited, waited-for children.
pub(super) fn children_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds per part since `before` (processes born since count from zero).
pub(super) fn spent_since(before: &Snapshot) -> Vec<(&'static str, f64)> {
    let mut parts: HashMap<&'static str, f64> = HashMap::new();
    for (pid, (part, secs)) in snapshot() {
        let was = before.get(&pid).map_or(0.0, |(_, s)| *s);
        *parts.entry(part).or_default() += (secs - was).max(0.0);
    }
    let order = ["postgres", "workers", "gateway", "load generator", "other"];
    order
        .iter()
        .filter_map(|p| parts.get(p).filter(|s| **s > 0.0).map(|s| (*p, *s)))
        .collect()
}
