//! The relay under test, as its own process (so that its memory is measured alone), and the devices registered straight into its database.

use huddle_core::ids::{DeviceId, UserId};
use huddle_core::wire::Role;
use p384::ecdsa::SigningKey;
use std::time::Duration;

/// Device number `n` (and its person: the same bytes).
pub fn device_id(n: usize) -> DeviceId {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    DeviceId::from_bytes(bytes)
}

/// Registers `keys.len()` devices, each with a person of its own.
pub async fn register(url: &str, keys: &[SigningKey]) -> anyhow::Result<()> {
    let store = huddle_relay::Store::connect(url).await?;
    let now = huddle_relay::clock::now();
    for (i, key) in keys.iter().enumerate() {
        let user = UserId::from_bytes(*device_id(i).as_bytes());
        store.put_user(user, "Load", Role::Staff, now).await?;
        store
            .put_device(
                device_id(i),
                user,
                key.verifying_key().to_encoded_point(false).as_bytes(),
                now,
            )
            .await?;
    }
    store.close().await;
    Ok(())
}

/// A relay process, killed when dropped.
pub struct RelayProcess {
    child: std::process::Child,
    pub addr: String,
}

impl RelayProcess {
    /// Starts the relay binary on a free port with `extra` flags, and waits
    /// until it answers.
    pub async fn start(
        relay_bin: &str,
        url: &str,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<RelayProcess> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .to_string();
        let dir = dir.display().to_string();
        let child = std::process::Command::new(relay_bin)
            .args(["--listen", &addr, "--database-url", url])
            .args(["--data-dir", &dir, "--app-dir", &dir])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("HUDDLE_LOAD_RELAY_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(std::process::Stdio::null())
            .spawn()?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(RelayProcess { child, addr })
    }

    /// The relay's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
