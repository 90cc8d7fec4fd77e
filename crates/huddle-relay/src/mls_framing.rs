//! The clear parts of MLS messages the relay reads (RFC 9420): a commit's header, to refuse a commit that is not one, and a key package's signing key, to refuse one of another phone, without reading anything else.
//!
//! Huddle's phones send every handshake and message as an MLS
//! `PrivateMessage`, whose header is in the clear: the group, the epoch and
//! the content type. The relay checks that a commit's header names the
//! group and epoch it was submitted for and says "commit", and that its
//! fields are whole. It cannot decrypt anything, so a well-framed commit
//! with junk inside still reaches the members, who refuse it.

use huddle_core::broadcast::REPLY_CIPHERTEXT_BYTES;
use huddle_core::ids::GroupId;
use huddle_core::wire::{chain_of_epoch, mls_epoch_of, mls_group_id_bytes};

const MLS10: u16 = 1;
const WIRE_FORMAT_PRIVATE_MESSAGE: u16 = 2;
const CONTENT_TYPE_APPLICATION: u8 = 1;
const CONTENT_TYPE_COMMIT: u8 = 3;

/// What the clear header of a `PrivateMessage` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub group: Vec<u8>,
    pub epoch: u64,
    pub content_type: u8,
    /// The length of the encrypted content (with its padding and tag).
    pub ciphertext_len: usize,
}

/// Why bytes are not a framed commit, in words for the sender's refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("it is not an MLS private message")]
    NotPrivateMessage,
    #[error("its fields are cut short or run on")]
    Truncated,
    #[error("it is for another group")]
    OtherGroup,
    #[error("it is for epoch {found}, not {expected}")]
    OtherEpoch { expected: u64, found: u64 },
    #[error("it is not a commit")]
    NotACommit,
    #[error("it is not an MLS key package")]
    NotAKeyPackage,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FramingError> {
        if self.0.len() < n {
            return Err(FramingError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FramingError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FramingError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, FramingError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(bytes))
    }

    /// A variable-length vector (RFC 9420, section 2.1.2): a 1, 2 or 4
    /// byte length whose top two bits say which. Nothing is allocated: the
    /// length is checked against what is there.
    fn vector(&mut self) -> Result<&'a [u8], FramingError> {
        let first = self.u8()?;
        let len = match first >> 6 {
            0 => usize::from(first & 0x3f),
            1 => (usize::from(first & 0x3f) << 8) | usize::from(self.u8()?),
            2 => {
                let rest = self.take(3)?;
                (usize::from(first & 0x3f) << 24)
                    | (usize::from(rest[0]) << 16)
                    | (usize::from(rest[1]) << 8)
                    | usize::from(rest[2])
            }
            _ => return Err(FramingError::Truncated),
        };
        self.take(len)
    }
}

/// Reads the header of an MLS `PrivateMessage`, checking that every field
/// is whole and nothing follows.
pub fn read_header(bytes: &[u8]) -> Result<Header, FramingError> {
    let mut reader = Reader(bytes);
    if reader.u16()? != MLS10 || reader.u16()? != WIRE_FORMAT_PRIVATE_MESSAGE {
        return Err(FramingError::NotPrivateMessage);
    }
    let group = reader.vector()?.to_vec();
    let epoch = reader.u64()?;
    let content_type = reader.u8()?;
    let _authenticated_data = reader.vector()?;
    let _encrypted_sender_data = reader.vector()?;
    let ciphertext = reader.vector()?;
    if !reader.0.is_empty() {
        return Err(FramingError::Truncated);
    }
    Ok(Header {
        group,
        epoch,
        content_type,
        ciphertext_len: ciphertext.len(),
    })
}

/// Whether `message` is framed as a reply to a broadcast: an application
/// message whose content is padded to the one size every reply has
/// (`huddle_core::broadcast`). What it says, and whether it is really a
/// reply, only the members can tell; they check.
pub fn is_reply_sized(message: &[u8]) -> bool {
    read_header(message).is_ok_and(|header| {
        header.content_type == CONTENT_TYPE_APPLICATION
            && header.ciphertext_len == REPLY_CIPHERTEXT_BYTES
    })
}

/// The framing of an application message as a phone's MLS library writes
/// it, with `ciphertext_len` bytes of (opaque) content: for tests and the
/// load generator, which have no MLS.
pub fn framed_application(group: GroupId, epoch: u64, ciphertext_len: usize) -> Vec<u8> {
    framed_private(
        group,
        epoch,
        CONTENT_TYPE_APPLICATION,
        &[0xad; 41],
        &[0x5e; 48],
        &vec![0xc1; ciphertext_len],
    )
}

/// The key a key package's member signs with (RFC 9420, section 10: the
/// version, the ciphersuite, the init key, then the leaf's encryption key
/// and signature key). Nothing after it is read, and nothing is allocated.
pub fn key_package_signature_key(bytes: &[u8]) -> Result<&[u8], FramingError> {
    let mut reader = Reader(bytes);
    if reader.u16()? != MLS10 {
        return Err(FramingError::NotAKeyPackage);
    }
    let _ciphersuite = reader.u16()?;
    let _init_key = reader.vector()?;
    let _encryption_key = reader.vector()?;
    reader.vector()
}

/// A key package's opening as a phone's MLS library writes it, signing with
/// `signature_key`, followed by `rest` (opaque here): for tests and the load
/// generator.
pub fn framed_key_package(signature_key: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(signature_key.len() + rest.len() + 80);
    bytes.extend_from_slice(&MLS10.to_be_bytes());
    bytes.extend_from_slice(&7u16.to_be_bytes());
    push_vector(&mut bytes, &[0x1e; 32]);
    push_vector(&mut bytes, &[0xe1; 32]);
    push_vector(&mut bytes, signature_key);
    bytes.extend_from_slice(rest);
    bytes
}

/// Checks that `commit` is framed as a commit of `group` in `epoch` (an
/// epoch on the wire: its chain names the MLS group, see
/// [`huddle_core::wire::wire_epoch`]).
pub fn check_commit(commit: &[u8], group: GroupId, epoch: u64) -> Result<(), FramingError> {
    let header = read_header(commit)?;
    if header.group != mls_group_id_bytes(group, chain_of_epoch(epoch)) {
        return Err(FramingError::OtherGroup);
    }
    let expected = mls_epoch_of(epoch);
    if header.epoch != expected {
        return Err(FramingError::OtherEpoch {
            expected,
            found: header.epoch,
        });
    }
    if header.content_type != CONTENT_TYPE_COMMIT {
        return Err(FramingError::NotACommit);
    }
    Ok(())
}

/// The framing of a commit as a phone's MLS library writes it, around
/// `body` (opaque here): for tests and the load generator, which have no
/// MLS.
pub fn framed_commit(group: GroupId, epoch: u64, body: &[u8]) -> Vec<u8> {
    framed_private(group, epoch, CONTENT_TYPE_COMMIT, &[], &[0x5e; 16], body)
}

/// A `PrivateMessage` of `group` in `epoch` (an epoch on the wire) with the
/// given content type and opaque fields.
fn framed_private(
    group: GroupId,
    epoch: u64,
    content_type: u8,
    authenticated_data: &[u8],
    encrypted_sender_data: &[u8],
    ciphertext: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(
        ciphertext.len() + authenticated_data.len() + encrypted_sender_data.len() + 40,
    );
    bytes.extend_from_slice(&MLS10.to_be_bytes());
    bytes.extend_from_slice(&WIRE_FORMAT_PRIVATE_MESSAGE.to_be_bytes());
    push_vector(
        &mut bytes,
        &mls_group_id_bytes(group, chain_of_epoch(epoch)),
    );
    bytes.extend_from_slice(&mls_epoch_of(epoch).to_be_bytes());
    bytes.push(content_type);
    push_vector(&mut bytes, authenticated_data);
    push_vector(&mut bytes, encrypted_sender_data);
    push_vector(&mut bytes, ciphertext);
    bytes
}

fn push_vector(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len();
    if len < 0x40 {
        out.push(len as u8);
    } else if len < 0x4000 {
        out.extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((len as u32 & 0x3fff_ffff) | 0x8000_0000).to_be_bytes());
    }
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: GroupId = GroupId::from_bytes([7; 16]);

    #[test]
    fn a_reply_is_an_application_message_of_exactly_the_reply_size() {
        let reply = framed_application(GROUP, 3, REPLY_CIPHERTEXT_BYTES);
        assert!(is_reply_sized(&reply));
        assert_eq!(
            read_header(&reply).map(|h| h.ciphertext_len),
            Ok(REPLY_CIPHERTEXT_BYTES)
        );
        for len in [0, REPLY_CIPHERTEXT_BYTES - 1, REPLY_CIPHERTEXT_BYTES + 1] {
            assert!(!is_reply_sized(&framed_application(GROUP, 3, len)));
        }
        assert!(!is_reply_sized(&framed_commit(
            GROUP,
            3,
            &[0; REPLY_CIPHERTEXT_BYTES]
        )));
        assert!(!is_reply_sized(&reply[..reply.len() - 1]));
        assert!(!is_reply_sized(b"not MLS at all"));
    }

    #[test]
    fn a_key_packages_signature_key_is_read_without_reading_the_rest() {
        let key = [4u8; 97];
        let package = framed_key_package(&key, b"the rest is not read");
        assert_eq!(key_package_signature_key(&package), Ok(&key[..]));
        assert_eq!(
            key_package_signature_key(&package[..40]),
            Err(FramingError::Truncated)
        );
        assert_eq!(
            key_package_signature_key(&[0, 2, 0, 7]),
            Err(FramingError::NotAKeyPackage)
        );
    }

    #[test]
    fn a_restarted_groups_commits_name_its_chain_in_the_group_id() {
        use huddle_core::wire::{restart_epoch, wire_epoch};
        let restart = framed_commit(GROUP, restart_epoch(2), b"restart");
        let header = read_header(&restart).unwrap();
        assert_eq!(header.group, [&[7u8; 16][..], &2u32.to_be_bytes()].concat());
        assert_eq!(header.epoch, 0);
        assert_eq!(check_commit(&restart, GROUP, restart_epoch(2)), Ok(()));
        // A commit of the first chain is not one of the third, nor the
        // other way round, whatever its MLS epoch.
        let first = framed_commit(GROUP, 0, b"first");
        assert_eq!(
            check_commit(&first, GROUP, restart_epoch(2)),
            Err(FramingError::OtherGroup)
        );
        assert_eq!(
            check_commit(&restart, GROUP, 0),
            Err(FramingError::OtherGroup)
        );
        assert_eq!(
            check_commit(&restart, GROUP, wire_epoch(2, 1)),
            Err(FramingError::OtherEpoch {
                expected: 1,
                found: 0
            })
        );
    }

    #[test]
    fn a_framed_commit_is_read_back_and_anything_else_is_refused() {
        let body = vec![0xab; 300];
        let commit = framed_commit(GROUP, 4, &body);
        assert_eq!(check_commit(&commit, GROUP, 4), Ok(()));
        assert_eq!(
            check_commit(&commit, GroupId::from_bytes([8; 16]), 4),
            Err(FramingError::OtherGroup)
        );
        assert_eq!(
            check_commit(&commit, GROUP, 5),
            Err(FramingError::OtherEpoch {
                expected: 5,
                found: 4
            })
        );
        assert_eq!(
            check_commit(b"commit", GROUP, 4),
            Err(FramingError::NotPrivateMessage)
        );
        // Every cut is refused, and so is anything after the end.
        for len in 0..commit.len() {
            assert!(check_commit(&commit[..len], GROUP, 4).is_err(), "{len}");
        }
        let mut longer = commit.clone();
        longer.push(0);
        assert_eq!(
            check_commit(&longer, GROUP, 4),
            Err(FramingError::Truncated)
        );
        // A length claiming a gigabyte costs nothing.
        let mut claim = commit[..4].to_vec();
        claim.extend_from_slice(&[0xbf, 0xff, 0xff, 0xff]);
        assert_eq!(read_header(&claim), Err(FramingError::Truncated));
        // An application message is not a commit.
        let mut message = commit.clone();
        message[4 + 1 + 16 + 8] = 1;
        assert_eq!(
            check_commit(&message, GROUP, 4),
            Err(FramingError::NotACommit)
        );
    }
}
