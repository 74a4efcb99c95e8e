//! A throwaway PostgreSQL cluster for tests that need settings the shared server cannot have
//! (TLS only, client certificates): `initdb` into a temporary directory, started with `pg_ctl`
//! on a free loopback port, stopped and deleted on drop. The binaries come from
//! `pg_config --bindir`. PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// A running throwaway cluster.
#[derive(Debug)]
pub struct ThrowawayPostgres {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// Its loopback port.
    pub port: u16,
}

/// What the cluster's `pg_hba.conf` and `postgresql.conf` should hold beyond the defaults.
#[derive(Debug, Default)]
pub struct ClusterSettings {
    /// Lines appended to `postgresql.conf` (`ssl = on`, ...). Paths may use `{dir}`, the
    /// cluster's own directory, where [`ThrowawayPostgres::write_file`] puts files.
    pub postgresql_conf: Vec<String>,
    /// The whole `pg_hba.conf` for TCP connections (a `local` line for the Unix socket is
    /// always added so the cluster can be administered).
    pub pg_hba: Vec<String>,
    /// Files to write into the cluster's directory before it starts: (name, contents).
    pub files: Vec<(String, String)>,
}

/// Where PostgreSQL's binaries are, if `pg_config` is installed.
pub fn postgres_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    dir.join("initdb").exists().then_some(dir)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a PostgreSQL binary, as the `postgres` user when this process is root.
fn run_as_owner(bindir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let binary = bindir.join(program);
    let mut command = if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(&binary);
        command
    } else {
        Command::new(&binary)
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", binary.display()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

impl ThrowawayPostgres {
    /// Creates and starts a cluster, or `None` when PostgreSQL's binaries are not installed.
    pub fn start(settings: ClusterSettings) -> Option<Self> {
        let bindir = postgres_bindir()?;
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().to_path_buf();
        for (name, contents) in &settings.files {
            let path = root.join(name);
            std::fs::write(&path, contents).expect("write cluster file");
            set_mode(&path, 0o600);
        }
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root)
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data = root.join("data");
        let data_arg = data.to_str().expect("UTF-8 path");
        let out = run_as_owner(
            &bindir,
            "initdb",
            &[
                "-D",
                data_arg,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let root_text = root.to_str().expect("UTF-8 path");
        let mut conf = vec![
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!("port = {port}"),
            format!("unix_socket_directories = '{root_text}'"),
            "max_connections = 40".to_owned(),
            "fsync = off".to_owned(),
        ];
        conf.extend(
            settings
                .postgresql_conf
                .iter()
                .map(|line| line.replace("{dir}", root_text)),
        );
        append(&data.join("postgresql.conf"), &conf.join("\n"));
        let mut hba = vec!["local all all trust".to_owned()];
        hba.extend(settings.pg_hba.iter().cloned());
        std::fs::write(data.join("pg_hba.conf"), hba.join("\n") + "\n").expect("pg_hba.conf");
        let log = root.join("postgres.log");
        let out = run_as_owner(
            &bindir,
            "pg_ctl",
            &[
                "-D",
                data_arg,
                "-l",
                log.to_str().expect("UTF-8"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(Self { dir, bindir, port })
    }

    /// The cluster's directory, where its files (certificates) live.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs SQL as the superuser over the Unix socket (for set-up such as `CREATE ROLE`).
    pub fn psql(&self, sql: &str) {
        let host = self.dir.path().to_str().expect("UTF-8");
        let port = self.port.to_string();
        let out = run_as_owner(
            &self.bindir,
            "psql",
            &[
                "-h",
                host,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Some(data) = data.to_str() {
            run_as_owner(
                &self.bindir,
                "pg_ctl",
                &["-D", data, "-m", "immediate", "stop"],
            );
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    writeln!(file, "\n{text}").expect("append");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
