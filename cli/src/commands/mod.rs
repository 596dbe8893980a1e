//! One module per command.

pub mod approve;
pub mod backup;
pub mod daemon;
pub mod doctor;
pub mod events;
pub mod export;
pub mod get;
pub mod grants;
pub mod import;
pub mod init;
pub mod inspect;
pub mod list;
pub mod log;
pub mod login;
pub mod mcp;
pub mod open;
pub mod profile;
pub mod register;
pub mod rekey;
pub mod remove;
pub mod revoke;
pub mod run;
pub mod runs;
pub mod status;
pub mod tray;
