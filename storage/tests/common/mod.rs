//! Helpers shared by the storage integration tests.

use bytes::Bytes;
use hato_storage::command::NewMessage;
use hato_storage::types::{Entry, LogId};
use hato_storage::Command;
use openraft::{CommittedLeaderId, EntryPayload};

/// A log entry enqueuing one message with `body`, at `index` in `term` (leader 1).
pub fn enqueue_entry(term: u64, index: u64, body: Vec<u8>) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command::Enqueue(Box::new(NewMessage {
            id: format!("m{index}-{term}"),
            received_ms: index,
            via: "smtp".into(),
            source_ip: "192.0.2.1".into(),
            auth_user: None,
            api_data: None,
            mail_from: "app@example.com".into(),
            recipients: vec!["to@example.net".into()],
            subject: "s".into(),
            message_id: None,
            body: Bytes::from(body),
        }))),
    }
}
