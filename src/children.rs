//! Child processes that must not outlive us (workers, gateway, embedded postgres).
//!
//! Linux delivers the parent-death signal when the *thread* that forked the child exits,
//! not the process, so every child is forked from one dedicated thread that lives as long
//! as the process. A killed `openpartner dev` or test binary therefore leaves nothing behind.

use std::{
    io,
    os::unix::process::CommandExt,
    process::{Child, Command},
    sync::{mpsc, Mutex, OnceLock},
};

type Job = (Command, i32, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut cmd, signal, reply) in rx {
                    // SAFETY: prctl is async-signal-safe; it runs in the forked child before exec.
                    unsafe {
                        cmd.pre_exec(move || {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn child-spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `cmd`; the child receives `signal` when this process dies.
pub fn spawn_owned(cmd: Command, signal: i32) -> io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .expect("spawner lock")
        .send((cmd, signal, tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

/// A currently free TCP port on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
