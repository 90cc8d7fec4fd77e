//! The relay command's body: reads its settings, starts serving, and stops cleanly on Ctrl-C or SIGTERM.

use clap::Parser;
use huddle_relay::Config;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[tokio::main]
pub async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    init_logging(&config);
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let relay = huddle_relay::start(&config).await?;
    let scheme = if config.serves_tls() { "https" } else { "http" };
    tracing::info!(address = %relay.local_addr, database = relay.store.engine_name(), "relay started");
    println!("Huddle is running at {scheme}://{}", relay.local_addr);
    if let Some(secret) = relay.setup_secret {
        // Printed, never logged: whoever opens this link first becomes the
        // organisation's administrator.
        let secret = huddle_core::hex::encode(&secret);
        println!();
        println!("First run: open this link on the manager's phone to set up Huddle.");
        println!("It works once; a restart before it is used makes a new one.");
        println!("  {scheme}://{}/setup#{secret}", relay.local_addr);
        println!();
    }
    println!("Stop it with Ctrl-C.");

    let handle = relay.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing requests in flight");
        handle.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    relay.wait().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
