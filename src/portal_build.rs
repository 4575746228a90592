//! The portal's build for `openpartner dev`: `portal/dist` (what the gateway serves from
//! `OP_PORTAL_DIR`) is rebuilt with npm when a source of the portal is newer than it —
//! `npm ci` first when `node_modules` is missing or older than `package-lock.json`, then
//! `npm run build` (type check, `vite build`, gzip siblings).

use anyhow::{bail, Context, Result};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

/// The checkout's `portal/` folder: under the current directory (`./openpartner dev` runs
/// from the repository root), else beside the `target/` the binary was built in.
pub fn find_portal() -> Option<PathBuf> {
    let mut candidates = vec![std::env::current_dir().ok()?.join("portal")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join("portal")));
    }
    candidates
        .into_iter()
        .find(|p| p.join("package.json").is_file() && p.join("index.html").is_file())
}

/// Builds `portal/dist` if it is missing or older than the portal's sources; returns it.
pub fn ensure_built(portal: &Path) -> Result<PathBuf> {
    let dist = portal.join("dist");
    let built = modified(&dist.join("index.html"));
    let sources = newest(&[
        portal.join("src"),
        portal.join("public"),
        portal.join("index.html"),
        portal.join("package.json"),
        portal.join("package-lock.json"),
        portal.join("vite.config.ts"),
        portal.join("tsconfig.json"),
        portal.join("scripts"),
    ]);
    if built.is_some() && built >= sources {
        return Ok(dist);
    }
    let installed = modified(&portal.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(&portal.join("package-lock.json")) {
        eprintln!("openpartner: installing the portal's build tools (npm ci in portal/)...");
        npm(
            portal,
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        )?;
    }
    eprintln!("openpartner: building the portal (npm run build in portal/)...");
    npm(portal, &["run", "--silent", "build"])?;
    Ok(dist)
}

fn npm(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running npm (install Node.js and npm: apt-get install nodejs npm)")?;
    if !status.success() {
        bail!(
            "npm {} failed in {} ({status})",
            args.join(" "),
            dir.display()
        );
    }
    Ok(())
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files under `paths` (folders walked).
fn newest(paths: &[PathBuf]) -> Option<SystemTime> {
    let mut stack: Vec<PathBuf> = paths.to_vec();
    let mut best = None;
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(m) = meta.modified() {
            best = best.max(Some(m));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_file_counts() {
        let dir = std::env::temp_dir().join(format!("op-portal-build-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/pages")).unwrap();
        std::fs::write(dir.join("src/a.ts"), "a").unwrap();
        let first = newest(&[dir.join("src")]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("src/pages/b.ts"), "b").unwrap();
        let second = newest(&[dir.join("src"), dir.join("missing")]).unwrap();
        assert!(second > first);
        assert_eq!(newest(&[dir.join("missing")]), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
