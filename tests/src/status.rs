//! What a refused call says: its code, the `ErrorInfo` reason and the `BadRequest` fields the
//! server's rich error details carry.

use tonic_types::StatusExt as _;

/// Asserts a status code and, when given, the `ErrorInfo` reason (in the service's error
/// domain).
pub fn assert_status(status: &tonic::Status, code: tonic::Code, reason: Option<&str>) {
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    if let Some(reason) = reason {
        let info = status
            .get_details_error_info()
            .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
        assert_eq!(info.reason, reason);
        assert_eq!(info.domain, active_sessions_client::ERROR_DOMAIN);
    }
}

/// The fields named by a status's `BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}
