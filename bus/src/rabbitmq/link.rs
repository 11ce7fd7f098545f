//! The connection to RabbitMQ, re-established on demand after the broker (or the network)
//! drops it.
//!
//! lapin's own auto-recovery replays topology and consumers behind the caller's back and is
//! still young; wharf needs precise answers instead — "was this publish confirmed?" — so the
//! link is simple and explicit: whoever needs the connection asks [`Link::connection`] or
//! [`Link::publisher`]; if the current one is closed, the first caller reconnects (one at a time)
//! and everyone else waits for that attempt. Callers bound their waits (publish timeout,
//! consumer backoff), never the link.

use std::sync::{Arc, Mutex};

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties};

/// A lazily (re)connected AMQP connection and its publisher-confirm channel.
pub(crate) struct Link {
    url: String,
    /// Shown in the management UI (and used by tests to close exactly this connection).
    name: String,
    current: Mutex<Current>,
    /// Held while reconnecting, so concurrent publishers that all saw the link drop open one
    /// connection between them, not one each.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Current {
    connection: Option<Arc<Connection>>,
    /// The confirm-mode channel every publish goes through; lapin pipelines concurrent publishes
    /// on it, each with its own confirm.
    publisher: Option<Channel>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry credentials: never print it.
        f.debug_struct("Link").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(url: String, name: String) -> Self {
        Self { url, name, current: Mutex::new(Current::default()), connecting: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open_connection(&self) -> Option<Arc<Connection>> {
        self.lock().connection.clone().filter(|c| c.status().connected())
    }

    fn open_publisher(&self) -> Option<Channel> {
        let current = self.lock();
        let connected = current.connection.as_ref().is_some_and(|c| c.status().connected());
        current.publisher.clone().filter(|p| connected && p.status().connected())
    }

    /// The open connection, connecting first if there is none.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, lapin::Error> {
        if let Some(connection) = self.open_connection() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        self.connection_locked().await
    }

    /// A new channel on the open connection.
    pub(crate) async fn channel(&self) -> Result<Channel, lapin::Error> {
        self.connection().await?.create_channel().await
    }

    /// The publisher-confirm channel, (re)opening the connection or the channel as needed. A
    /// channel closed by a channel-level error (e.g. publishing to a missing exchange) is
    /// replaced without disturbing the consumers sharing the connection.
    pub(crate) async fn publisher(&self) -> Result<Channel, lapin::Error> {
        if let Some(publisher) = self.open_publisher() {
            return Ok(publisher);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(publisher) = self.open_publisher() {
            return Ok(publisher);
        }
        let connection = self.connection_locked().await?;
        let publisher = connection.create_channel().await?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await?;
        self.lock().publisher = Some(publisher.clone());
        Ok(publisher)
    }

    /// The open connection, or a new one; the caller holds `connecting`.
    async fn connection_locked(&self) -> Result<Arc<Connection>, lapin::Error> {
        if let Some(connection) = self.open_connection() {
            return Ok(connection);
        }
        let properties = ConnectionProperties::default().with_connection_name(self.name.clone().into());
        let connection = Arc::new(Connection::connect(&self.url, properties).await?);
        tracing::info!(connection = %self.name, "connected to RabbitMQ");
        let mut current = self.lock();
        current.connection = Some(Arc::clone(&connection));
        current.publisher = None;
        Ok(connection)
    }
}
