//! Generated gRPC code (see `proto/hato.proto`) and blob helpers.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("hato.cluster.v1");

/// Encode a value into a [`Blob`].
pub fn blob<T: serde::Serialize>(v: &T) -> Result<Blob, tonic::Status> {
    bincode::serialize(v)
        .map(|data| Blob { data: data.into() })
        .map_err(|e| tonic::Status::internal(format!("encode: {e}")))
}

/// Decode a [`Blob`].
pub fn unblob<T: serde::de::DeserializeOwned>(b: &Blob) -> Result<T, tonic::Status> {
    bincode::deserialize(&b.data)
        .map_err(|e| tonic::Status::invalid_argument(format!("decode: {e}")))
}
