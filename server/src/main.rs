//! The `active-sessions` binary: parse configuration, install telemetry, then either migrate
//! the database or serve until SIGTERM or Ctrl-C, and flush telemetry on the way out.

use active_sessions_server::{
    Application, app,
    config::{Cli, Command},
    telemetry::Telemetry,
};
use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    let telemetry = Telemetry::install(&config.log)?;
    if telemetry.exporting() {
        tracing::info!("exporting traces and metrics over OTLP");
    }

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            app::connect_and_migrate(&config).await?;
            tracing::info!(database = %config.database.url, "database schema is up to date");
        }
        Command::Serve => {
            let database = config.database.url.clone();
            let application = Application::build(config).await?;
            let addr = application
                .local_addr()
                .context("reading the bound address")?;
            tracing::info!(%addr, %database, "active-sessions listening");
            application.run(shutdown_signal()).await?;
            tracing::info!("stopped");
        }
    }
    telemetry.shutdown();
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
