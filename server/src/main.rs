//! The `active-sessions` binary: parse configuration, install telemetry, then either migrate
//! the database or serve until SIGTERM or Ctrl-C, and flush telemetry on the way out.

use active_sessions_server::{
    Application, app,
    config::{Cli, Command, HealthProbe, PruneArgs},
    probe,
    telemetry::Telemetry,
};
use anyhow::Context;
use clap::Parser;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Health(probe) = &command {
        // A probe answers with one line and its exit status, without any logging set-up.
        std::process::exit(probe_health(probe).await);
    }
    let mut config = cli.config;
    config
        .database
        .resolve_url_file()
        .context("reading --database-url-file")?;
    let telemetry = Telemetry::install(&config.log)?;
    if telemetry.exporting() {
        tracing::info!("exporting traces and metrics over OTLP");
    }

    match command {
        Command::Migrate => {
            app::connect_and_migrate(&config).await?;
            tracing::info!(database = %config.database.url, "database schema is up to date");
        }
        // Answered before telemetry was installed.
        Command::Health(_) => {}
        Command::Prune(args) => prune(config, &args).await?,
        Command::Serve => {
            let database = config.database.url.clone();
            let shutdown = shutdown_signal();
            let application = Application::build(config).await?;
            let addr = application
                .local_addr()
                .context("reading the bound address")?;
            tracing::info!(%addr, %database, "active-sessions listening");
            application.run(shutdown).await?;
            tracing::info!("stopped");
        }
    }
    telemetry.shutdown();
    Ok(())
}

/// `active-sessions prune`: deletes (or with `--dry-run` counts) what is past its retention,
/// one line per table.
async fn prune(
    config: active_sessions_server::config::Config,
    args: &PruneArgs,
) -> anyhow::Result<()> {
    let store = app::connect_and_migrate(&config).await?;
    let services = active_sessions_server::app::Services::new(
        store,
        config,
        std::sync::Arc::new(active_sessions_server::clock::SystemClock),
    )
    .await?;
    let pruner = services.pruner();
    let report = if args.dry_run {
        pruner.preview().await?
    } else {
        pruner.prune_once().await?
    };
    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let settings = pruner.settings();
    let days = |d: std::time::Duration| humantime::format_duration(d).to_string();
    println!(
        "sessions: {verb} {} (ended more than {} ago)",
        report.sessions,
        days(settings.revoked_session)
    );
    println!(
        "security_events: {verb} {} (older than {})",
        report.security_events,
        days(settings.security_event)
    );
    println!(
        "revocations: {verb} {} (older than {})",
        report.revocations,
        days(settings.revocation_log)
    );
    Ok(())
}

/// `active-sessions health`: prints the status, and returns the exit status (0 when SERVING).
async fn probe_health(probe: &HealthProbe) -> i32 {
    match probe::check(probe).await {
        Ok(ServingStatus::Serving) => {
            println!("SERVING");
            0
        }
        Ok(status) => {
            println!("{}", status.as_str_name());
            1
        }
        Err(err) => {
            eprintln!("{err}");
            1
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled, so a signal that arrives right after the server logs
/// that it listens still starts a drain instead of killing the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                (terminate, interrupt) => {
                    if let Err(err) = terminate.and(interrupt) {
                        tracing::error!(error = %err, "cannot listen for SIGTERM or SIGINT");
                    }
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
