//! The Confluent wire format: magic byte 0, the writer schema's id (4
//! bytes, big-endian), the Avro body.

use crate::FrameError;

/// The schema id and the body of a Confluent-framed value.
pub fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8]), FrameError> {
    let Some((&magic, rest)) = bytes.split_first() else {
        return Err(FrameError::Empty);
    };
    if magic != 0 {
        return Err(FrameError::Magic(magic));
    }
    let Some((id, body)) = rest.split_first_chunk::<4>() else {
        return Err(FrameError::NoSchemaId(bytes.len()));
    };
    Ok((u32::from_be_bytes(*id), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_split_or_refused_by_what_is_wrong() {
        assert_eq!(split_frame(&[0, 0, 0, 1, 2, 9]), Ok((258, &[9u8][..])));
        assert_eq!(split_frame(&[0, 0, 0, 0, 7]), Ok((7, &[][..])));
        assert_eq!(split_frame(&[]), Err(FrameError::Empty));
        assert_eq!(split_frame(b"{}"), Err(FrameError::Magic(b'{')));
        assert_eq!(split_frame(&[0, 1, 2]), Err(FrameError::NoSchemaId(3)));
    }
}
