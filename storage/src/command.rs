//! The write language of the state machine.
//!
//! Every state change in Hato is one of these commands, proposed through Raft and applied by
//! the state machine. Commands carry everything apply needs (including timestamps chosen by the
//! proposer), so applying them is deterministic on every node. Validate input *before*
//! proposing: apply never fails for bad user input, it records what the command says.

use serde::{Deserialize, Serialize};

/// A replicated state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Set a cluster-wide setting (`value` is a JSON document).
    PutSetting { key: String, value: String },
    /// Set a setting only if it does not exist yet (first writer wins).
    PutSettingIfAbsent { key: String, value: String },
    /// Remove a cluster-wide setting.
    DeleteSetting { key: String },
    /// Put an address on the block list (`at_ms`: proposer's wall clock, ms since epoch).
    Block {
        address: String,
        reason: String,
        at_ms: u64,
    },
    /// Take an address off the block list.
    Unblock { address: String },
    /// Accept a message into the queue: body stored once, one queue entry and one `queued`
    /// delivery-log record per recipient; recipients on the block list (checked at apply, so
    /// the check is ordered with block/unblock writes) are recorded as `blocked` instead of
    /// queued. Applying the same message id twice changes nothing (retries are safe).
    Enqueue(Box<NewMessage>),
}

/// A message accepted by SMTP or the API, as proposed for the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Cluster-unique id chosen by the accepting node (time-ordered).
    pub id: String,
    /// Proposer's clock when the message was accepted (ms since epoch).
    pub received_ms: u64,
    /// How it arrived: `smtp` or `api`.
    pub via: String,
    /// The client's address (after PROXY protocol).
    pub source_ip: String,
    /// SMTP AUTH or API user, if authenticated.
    pub auth_user: Option<String>,
    /// The `X-Api-Data` tag, if present.
    pub api_data: Option<String>,
    /// Envelope sender (may be empty for the null reverse-path).
    pub mail_from: String,
    /// Envelope recipients, in the order given.
    pub recipients: Vec<String>,
    /// Decoded Subject (for the delivery log).
    pub subject: String,
    /// The Message-ID header, if present.
    pub message_id: Option<String>,
    /// The message as it will be delivered (headers and body).
    #[serde(with = "serde_bytes_compat")]
    pub body: Vec<u8>,
}

/// bincode handles `Vec<u8>` efficiently already; this keeps the field explicit for other
/// serializers (JSON would otherwise write an array of numbers).
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// What applying a [`Command`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Membership and blank entries, and commands with nothing to report.
    #[default]
    Ok,
    /// The command changed an existing record (`true`) or created/removed nothing (`false`).
    Changed(bool),
    /// A message was enqueued: how many recipients were queued and how many blocked;
    /// `duplicate` when the id had been applied before (nothing changed this time).
    Enqueued {
        queued: u32,
        blocked: u32,
        duplicate: bool,
    },
}

impl Command {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::PutSetting { .. } => "put_setting",
            Command::PutSettingIfAbsent { .. } => "put_setting_if_absent",
            Command::DeleteSetting { .. } => "delete_setting",
            Command::Block { .. } => "block",
            Command::Unblock { .. } => "unblock",
            Command::Enqueue(_) => "enqueue",
        }
    }
}

/// A block-list record as stored in the `blocks` column family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub address: String,
    pub reason: String,
    pub at_ms: u64,
}

/// Where a recipient of a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    Queued,
    Blocked,
}

/// A message's metadata in the queue (the body is stored separately, once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub id: String,
    pub received_ms: u64,
    pub via: String,
    pub source_ip: String,
    pub auth_user: Option<String>,
    pub api_data: Option<String>,
    pub mail_from: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub size: u64,
    pub recipients: Vec<RecipientState>,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    pub address: String,
    pub status: RecipientStatus,
}

/// One delivery-log record (`queued`, `blocked`; delivery adds `succeeded`, `deferred`,
/// `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub at_ms: u64,
    pub message: String,
    pub recipient: String,
    pub mail_from: String,
    pub status: String,
    pub source_ip: String,
    pub subject: String,
    pub api_data: Option<String>,
    pub detail: String,
}
