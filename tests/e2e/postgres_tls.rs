//! `DATABASE_URL` over TLS (operate.md): `sslmode` (`disable|prefer|require|verify-ca|
//! verify-full`, libpq's meaning) and `sslrootcert`, against a local PostgreSQL whose
//! certificate is signed by a CA made for the test (openssl), for a single client and for
//! every process (`openpartner migrate`, worker, gateway).

use crate::harness::{procs, *};
use openpartner::embedded_pg::{EmbeddedPg, FAST_SETTINGS};
use std::{path::Path, process::Command};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.pem`), and with `server`, a certificate for `IP:127.0.0.1` it signed.
fn make_ca(dir: &Path, name: &str, server: bool) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=OpenPartner test CA {name}"),
            "-keyout",
            &ca_key,
            "-out",
            &ca,
        ],
    );
    if server {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.crt",
            ],
        );
    }
}

/// Whether this client's own connection is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let client = op_control::db::connect(url).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn database_url_honours_sslmode_and_sslrootcert() {
    let work = procs::LogDir::new("pgtls");
    let dir = &work.0;
    make_ca(dir, "good", true);
    make_ca(dir, "other", false);
    let pg = EmbeddedPg::start(&dir.join("pg"), FAST_SETTINGS)
        .await
        .expect("a cluster");
    // TLS on: the server's files in its data directory, owned by the user it runs as.
    let data = dir.join("pg");
    let owner = std::fs::metadata(&data).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for f in ["server.crt", "server.key"] {
        std::fs::copy(dir.join(f), data.join(f)).unwrap();
        std::os::unix::fs::chown(data.join(f), Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let plain_url = pg.database_url();
    let admin = op_control::db::connect(&format!("{plain_url}?sslmode=disable"))
        .await
        .unwrap();
    procs::alter_system(&admin, "ssl", "on").await;
    let ca = dir.join("good-ca.pem").display().to_string();
    let other = dir.join("other-ca.pem").display().to_string();
    let url = |q: &str| format!("{plain_url}?connect_timeout=5&{q}");
    let mut on = false;
    for _ in 0..100 {
        if encrypted(&url("sslmode=require")).await == Ok(true) {
            on = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(on, "the server took TLS on");

    // Each mode, as libpq has it.
    assert_eq!(encrypted(&url("sslmode=disable")).await, Ok(false));
    assert_eq!(
        encrypted(&url("sslmode=prefer")).await,
        Ok(true),
        "prefer tries TLS first"
    );
    assert_eq!(
        encrypted(&plain_url).await,
        Ok(true),
        "prefer is the default"
    );
    assert_eq!(encrypted(&url("sslmode=require")).await, Ok(true));
    let full = url(&format!("sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(encrypted(&full).await, Ok(true));
    assert_eq!(
        encrypted(&url(&format!("sslmode=verify-ca&sslrootcert={ca}"))).await,
        Ok(true)
    );
    // Another CA: refused by every checking mode (require with a root file checks the chain).
    for mode in ["verify-full", "verify-ca", "require"] {
        let r = encrypted(&url(&format!("sslmode={mode}&sslrootcert={other}"))).await;
        assert!(r.is_err(), "{mode} with a foreign CA: {r:?}");
    }
    // By name: the certificate is for 127.0.0.1, not localhost. verify-ca does not look.
    let by_name = |q: &str| {
        format!(
            "postgres://postgres@localhost:{}/openpartner?connect_timeout=5&{q}",
            plain_url
                .rsplit(':')
                .next()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
        )
    };
    let r = encrypted(&by_name(&format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    assert!(r.is_err(), "verify-full checks the host name: {r:?}");
    if encrypted(&by_name("sslmode=disable")).await.is_ok() {
        // (localhost may resolve to ::1 only, where the cluster does not listen.)
        assert_eq!(
            encrypted(&by_name(&format!("sslmode=verify-ca&sslrootcert={ca}"))).await,
            Ok(true)
        );
    }
    // verify-* without a root refuses, before any connection.
    assert!(encrypted(&url("sslmode=verify-full")).await.is_err());
    // The shared cluster: without TLS (the harness's own), require fails and prefer falls
    // back to plain; with TLS (a Citus cluster under scripts/citus-smoke: its nodes serve a
    // self-signed X.509 v1 certificate), both are encrypted.
    let shared_url = &shared().database_url;
    let shared_tls: String = db().await.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let require = encrypted(&format!("{shared_url}?sslmode=require")).await;
    let prefer = encrypted(&format!("{shared_url}?sslmode=prefer")).await;
    match shared_tls.as_str() {
        "on" => assert_eq!((require, prefer), (Ok(true), Ok(true))),
        _ => {
            assert!(require.is_err(), "{require:?}");
            assert_eq!(prefer, Ok(false));
        }
    }

    // Every process with verify-full: migrate, then a worker and a gateway serving a tenant.
    let out = Command::new(env!("CARGO_BIN_EXE_openpartner"))
        .arg("migrate")
        .env("DATABASE_URL", &full)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = [("DATABASE_URL", full.as_str())];
    let pair = procs::pair("tls-worker", &env, &work).await;
    let t = Tenant::on(&pair.base).await;
    t.partner("tls@example.com").await;
    let rows = admin
        .query(
            "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'openpartner'",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.len() >= 2, "the pools are connected: {}", rows.len());
    assert!(
        rows.iter().all(|r| r.get::<_, bool>(0)),
        "every connection of the processes is encrypted"
    );

    // A Unix socket (host = the socket's directory, percent-encoded): no TLS there, as with
    // libpq, whatever the default `prefer` would try over TCP — and not a "DNS name" error.
    let socket_dir: String =
        url::form_urlencoded::byte_serialize(pg.data_dir.to_string_lossy().as_bytes()).collect();
    let socket_url = format!("postgres://postgres@{socket_dir}:{}/openpartner", pg.port);
    assert_eq!(encrypted(&socket_url).await, Ok(false), "over the socket");
    assert_eq!(
        encrypted(&format!("{socket_url}?sslmode=require")).await,
        Ok(false),
        "sslmode does not apply to a socket"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_openpartner"))
        .arg("migrate")
        .env("DATABASE_URL", &socket_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate over a Unix socket: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(pg);
}
