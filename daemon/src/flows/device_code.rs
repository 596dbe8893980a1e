//! The device authorization grant (RFC 8628): ask for a user code, show it,
//! poll the token endpoint at the given interval, slow down when told. The
//! requests are the `oauth2` crate's, through [`crate::flows::token`].

pub use crate::flows::token::{
    device_authorize as authorize, device_poll as poll, DeviceAuthorization, PollFailure,
};
