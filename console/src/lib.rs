//! The admin console's pure parts: the web page compiled into the binary, console passwords
//! and session tokens, and the SVG charts of the dashboard. (The lock-out policy lives with
//! the state machine, `hato_storage::command::Lockout`, which applies it atomically.)
//!
//! Contract: nothing here touches the network or storage. The node (`node/src/console/`)
//! serves the page and the JSON API described in `console/API.md`, stores accounts, sessions
//! and the audit log as replicated settings, and calls these functions to decide.

pub mod assets;
pub mod charts;
pub mod password;
