//! The protobuf codec of every generated client and server: prost's encoding, except that a
//! message that does not decode (a field with the wrong wire type, truncated bytes) is
//! INVALID_ARGUMENT with a `google.rpc.BadRequest` naming the field, instead of tonic's default
//! INTERNAL. Bad input is the caller's problem, and the status should say so.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstEncoder};

/// A [`Codec`] for `application/grpc+proto` that reports decode failures as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ActiveSessionsCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for ActiveSessionsCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for ActiveSessionsCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ActiveSessionsDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ActiveSessionsDecoder { _type: PhantomData }
    }
}

/// Decodes `U`, mapping failures to INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ActiveSessionsDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for ActiveSessionsDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        U::decode(buf).map(Some).map_err(decode_error_status)
    }
}

/// INVALID_ARGUMENT naming the innermost field prost was decoding when it failed.
fn decode_error_status(error: prost::DecodeError) -> Status {
    let text = error.to_string();
    // prost describes the failure as "failed to decode Protobuf message: Msg.field: Inner.f: why";
    // the field path is the `Type.field` segments, minus the message type names.
    let detail = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    let segments: Vec<&str> = detail.split(": ").collect();
    let field = segments
        .iter()
        .take(segments.len().saturating_sub(1))
        .filter_map(|segment| segment.split_once('.').map(|(_, field)| field))
        .collect::<Vec<_>>()
        .join(".");
    let field = if field.is_empty() {
        "(message)".to_owned()
    } else {
        field
    };
    let mut details = tonic_types::ErrorDetails::with_bad_request_violation(
        field.clone(),
        format!(
            "cannot decode: {}",
            segments.last().copied().unwrap_or(detail)
        ),
    );
    details.set_error_info(
        crate::v1::ErrorReason::InvalidRequest.reason(),
        crate::ERROR_DOMAIN,
        std::collections::HashMap::from([("violations".to_owned(), "1".to_owned())]),
    );
    use tonic_types::StatusExt;
    Status::with_error_details(
        Code::InvalidArgument,
        format!("request does not decode ({field}): {detail}"),
        details,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::v1::SetSsoLinkRequest;
    use tonic_types::StatusExt;

    #[test]
    fn wrong_wire_type_names_the_field() {
        // Field 1 (account_id, a string) sent as a varint.
        let err = SetSsoLinkRequest::decode(&[0x08, 0x01][..]).unwrap_err();
        let status = decode_error_status(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().unwrap();
        assert_eq!(bad.field_violations[0].field, "account_id");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "INVALID_REQUEST");
    }
}
