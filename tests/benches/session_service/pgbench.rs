//! The PostgreSQL floor: `pgbench -S -M prepared -c 8` (a prepared primary-key SELECT from 8
//! clients) against the same PostgreSQL, in a scratch database it initialises itself
//! (`pgbench -i`) and that is dropped afterwards. Found as `pg_config --bindir`/pgbench; when
//! it is not installed the PostgreSQL ratio is reported as not measured.

use std::{path::PathBuf, process::Command, time::Duration};

use active_sessions_e2e::{Backend, bench_support::ScratchDatabase};
use anyhow::{Context, Result, bail};

use crate::load::Window;

/// Clients of the reference run.
pub const CLIENTS: usize = 8;

#[derive(Debug)]
pub struct Pgbench {
    program: PathBuf,
    database: ScratchDatabase,
}

impl Pgbench {
    /// pgbench over an initialised scratch database, or `None` (with the reason) when pgbench
    /// is not installed.
    pub async fn prepare() -> Result<std::result::Result<Self, String>> {
        let Some(program) = find() else {
            return Ok(Err("pgbench not found (pg_config --bindir)".into()));
        };
        let database = ScratchDatabase::create(Backend::Postgres)
            .await
            .context("no PostgreSQL")?;
        let pgbench = Self { program, database };
        if let Err(err) = pgbench.run(&["-i", "-q"]).await {
            pgbench.finish().await;
            return Err(err.context("pgbench -i"));
        }
        Ok(Ok(pgbench))
    }

    /// One run of `window` (whole seconds, at least one): its transactions as a window.
    pub async fn window(&self, window: Duration) -> Result<Window> {
        let seconds = window.as_secs_f64().round().max(1.0) as u64;
        let output = self
            .run(&[
                "-S",
                "-M",
                "prepared",
                "-c",
                &CLIENTS.to_string(),
                "-T",
                &seconds.to_string(),
                "-n",
            ])
            .await?;
        let tps: f64 = output
            .lines()
            .find_map(|line| line.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no tps in pgbench's output:\n{output}"))?;
        let elapsed = Duration::from_secs(seconds);
        Ok(Window {
            calls: (tps * elapsed.as_secs_f64()).round() as u64,
            elapsed,
            ..Window::default()
        })
    }

    /// Drops the scratch database.
    pub async fn finish(self) {
        self.database.drop_database().await;
    }

    async fn run(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.program);
        command.args(args).arg(self.database.url());
        let output = tokio::task::spawn_blocking(move || command.output()).await??;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "pgbench {}: {}\n{stdout}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }
}

/// `pg_config --bindir`/pgbench, when both exist.
fn find() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bindir = String::from_utf8(output.stdout).ok()?;
    let program = PathBuf::from(bindir.trim()).join("pgbench");
    program.is_file().then_some(program)
}
