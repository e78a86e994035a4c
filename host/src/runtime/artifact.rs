//! A precompiled component as Sluice keeps it, on local disk and in the
//! registry: wasmtime's serialized component behind a header that names the
//! component and the engine it was compiled for, and a SHA-256 of both and
//! of the code.
//!
//! Why a header of our own: `Component::deserialize` is `unsafe` because
//! wasmtime maps the bytes as executable code and trusts them. It checks
//! its own header (its version, the engine's settings), but nothing after
//! it: an artifact damaged on disk or on its way, cut short, or stored
//! under another component's name would be loaded and run as whatever the
//! damage made of it. So bytes reach wasmtime only inside an [`Artifact`],
//! and an `Artifact` is made only two ways: sealed from what this
//! process's engine has just compiled ([`Artifact::seal`]), or opened from
//! stored bytes whose magic, component, engine key and SHA-256 all check
//! out ([`Artifact::open`]); [`Artifact::deserialize`] checks the engine
//! once more. Every `unsafe` deserialize in Sluice is that one call, on
//! bytes that this build of wasmtime, configured as the engine given,
//! produced for this component, unchanged since.
//!
//! What the digest cannot stop: someone who can write the registry's store
//! can write a well-formed artifact of their own, native code that every
//! instance would then run outside the sandbox. With shared artifacts on,
//! that store is trusted as the binaries are; a registry whose writers are
//! trusted less is opened with them off (`Registry::with_shared_artifacts`).

use std::fmt;
use std::hash::{Hash, Hasher};

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// What every artifact starts with; the last digit is the format's
/// version, so a later format never reads an earlier one.
const MAGIC: &[u8; 16] = b"sluice-cwasm-v1\n";
const COMPONENT: std::ops::Range<usize> = 16..48;
const ENGINE: std::ops::Range<usize> = 48..80;
const DIGEST: std::ops::Range<usize> = 80..112;
/// Where wasmtime's bytes start.
const HEADER: usize = 112;

/// The SHA-256 of a component: its version everywhere in Sluice.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ComponentHash([u8; 32]);

impl ComponentHash {
    pub fn of(wasm: &[u8]) -> Self {
        ComponentHash(Sha256::digest(wasm).into())
    }

    /// A version as written (64 hex digits), or `None`: a version from a
    /// manifest or a request never names a file unless it is one.
    pub fn parse(version: &str) -> Option<Self> {
        let mut hash = [0; 32];
        let lower = version.bytes().all(|b| !b.is_ascii_uppercase());
        (lower && hex::decode_to_slice(version, &mut hash).is_ok()).then_some(ComponentHash(hash))
    }
}

impl fmt::Display for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentHash({self})")
    }
}

/// Which engines can load an artifact: a SHA-256 of wasmtime's
/// compatibility hash (the target, the CPU features used, the compiler's
/// flags, the tunables and features read while compiling, wasmtime's
/// version) and of this format's version. Stable across processes and
/// builds, unlike `DefaultHasher`, so it can name shared objects; should
/// a Rust release hash a type differently, the key changes and instances
/// compile once more, never load a foreign artifact.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EngineKey([u8; 32]);

impl EngineKey {
    pub fn of(engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        MAGIC.hash(&mut hasher);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        EngineKey(hasher.0.finalize().into())
    }
}

impl fmt::Display for EngineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EngineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EngineKey({self})")
    }
}

/// Feeds what a `Hash` writes into SHA-256; only `write` is ever called by
/// `Hash` implementations, and the digest is read from the inner hasher.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(std::array::from_fn(|i| digest[i]))
    }
}

/// Why stored bytes are not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a Sluice artifact (too short, or no `sluice-cwasm-v1` header)")]
    NotAnArtifact,
    #[error("compiled from another component ({found})")]
    OtherComponent { found: String },
    #[error("compiled for another engine configuration ({found})")]
    OtherEngine { found: String },
    #[error("damaged: its SHA-256 does not match its content (changed or cut short)")]
    Damaged,
}

/// A precompiled component whose bytes are known good: see the module's
/// documentation. Cheap to clone.
#[derive(Clone)]
pub struct Artifact {
    bytes: Bytes,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Artifact({} bytes)", self.bytes.len())
    }
}

impl Artifact {
    /// Wraps what `engine` (of key `engine_key`) has just compiled from the
    /// component `component`.
    pub fn seal(component: &ComponentHash, engine_key: &EngineKey, compiled: &[u8]) -> Self {
        let mut bytes = BytesMut::with_capacity(HEADER + compiled.len());
        bytes.put_slice(MAGIC);
        bytes.put_slice(&component.0);
        bytes.put_slice(&engine_key.0);
        let digest = digest(&bytes, compiled);
        bytes.put_slice(&digest);
        bytes.put_slice(compiled);
        Artifact {
            bytes: bytes.freeze(),
        }
    }

    /// Checks stored bytes: an artifact of `component` for an engine of
    /// key `engine_key`, unchanged since it was sealed.
    pub fn open(
        bytes: Bytes,
        component: &ComponentHash,
        engine_key: &EngineKey,
    ) -> Result<Self, Refused> {
        let (Some(header), Some(compiled)) = (bytes.get(..HEADER), bytes.get(HEADER..)) else {
            return Err(Refused::NotAnArtifact);
        };
        if header.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(Refused::NotAnArtifact);
        }
        let field = |range: std::ops::Range<usize>| header.get(range).unwrap_or_default();
        if field(COMPONENT) != component.0 {
            return Err(Refused::OtherComponent {
                found: hex::encode(field(COMPONENT)),
            });
        }
        if field(ENGINE) != engine_key.0 {
            return Err(Refused::OtherEngine {
                found: hex::encode(field(ENGINE)),
            });
        }
        let sealed = header.get(..DIGEST.start).unwrap_or_default();
        if digest(sealed, compiled) != field(DIGEST) {
            return Err(Refused::Damaged);
        }
        Ok(Artifact { bytes })
    }

    /// The sealed bytes, header and all: what is stored.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The component, ready for the linker. `engine` must be the engine the
    /// artifact was sealed for or opened with (checked: a mistake is an
    /// error, never a deserialize of a foreign artifact).
    pub fn deserialize(&self, engine: &Engine) -> Result<Component, wasmtime::Error> {
        let key = EngineKey::of(engine);
        if self.bytes.get(ENGINE) != Some(key.0.as_slice()) {
            return Err(wasmtime::Error::msg(
                "the artifact is for another engine configuration",
            ));
        }
        let compiled = self.bytes.get(HEADER..).unwrap_or_default();
        // SAFETY: `compiled` is what `Engine::precompile_component` of an
        // engine with this one's compatibility hash produced (the key was
        // just checked) for this component, unchanged since: an `Artifact`
        // exists only sealed from a compile of this process, or opened from
        // bytes whose SHA-256 matched (module documentation). wasmtime
        // checks its own header again, and copies the bytes into a mapping
        // of its own before making it executable.
        unsafe { Component::deserialize(engine, compiled) }
    }
}

/// The SHA-256 over the header's first fields and the compiled code.
fn digest(sealed: &[u8], compiled: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(sealed);
    hasher.update(compiled);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (ComponentHash, EngineKey) {
        (ComponentHash::of(b"a component"), EngineKey([7; 32]))
    }

    fn sealed() -> Bytes {
        let (component, engine) = keys();
        Artifact::seal(&component, &engine, b"compiled code, as wasmtime wrote it")
            .bytes()
            .clone()
    }

    fn open(bytes: Vec<u8>) -> Result<Artifact, Refused> {
        let (component, engine) = keys();
        Artifact::open(Bytes::from(bytes), &component, &engine)
    }

    #[test]
    fn a_sealed_artifact_opens_as_it_was() {
        let opened = open(sealed().to_vec()).unwrap();
        assert_eq!(opened.bytes(), &sealed());
        assert_eq!(
            opened.bytes().get(HEADER..),
            Some(&b"compiled code, as wasmtime wrote it"[..])
        );
    }

    #[test]
    fn any_byte_changed_is_refused() {
        let good = sealed();
        for at in 0..good.len() {
            let mut bad = good.to_vec();
            bad[at] ^= 0x01;
            assert!(open(bad).is_err(), "byte {at} changed was accepted");
        }
    }

    #[test]
    fn an_artifact_cut_short_or_grown_is_refused() {
        let good = sealed();
        for len in 0..good.len() {
            let refused = open(good[..len].to_vec()).unwrap_err();
            let expected = if len < HEADER {
                Refused::NotAnArtifact
            } else {
                Refused::Damaged
            };
            assert_eq!(refused, expected, "cut to {len} bytes");
        }
        let mut grown = good.to_vec();
        grown.push(0);
        assert_eq!(open(grown).unwrap_err(), Refused::Damaged);
    }

    #[test]
    fn another_component_or_engine_is_refused_by_name() {
        let (component, engine) = keys();
        let other = ComponentHash::of(b"another component");
        let of_other = Artifact::seal(&other, &engine, b"code").bytes().clone();
        assert_eq!(
            Artifact::open(of_other, &component, &engine).unwrap_err(),
            Refused::OtherComponent {
                found: other.to_string()
            }
        );
        let for_other = Artifact::seal(&component, &EngineKey([8; 32]), b"code")
            .bytes()
            .clone();
        assert!(matches!(
            Artifact::open(for_other, &component, &engine),
            Err(Refused::OtherEngine { .. })
        ));
    }

    #[test]
    fn a_wasmtime_artifact_without_the_header_is_refused() {
        // What the cache held before this format: wasmtime's ELF alone.
        let mut elf = b"\x7fELF".to_vec();
        elf.resize(4096, 0);
        assert_eq!(open(elf).unwrap_err(), Refused::NotAnArtifact);
    }

    #[test]
    fn only_a_full_lowercase_sha256_is_a_version() {
        let hash = ComponentHash::of(b"x");
        assert_eq!(ComponentHash::parse(&hash.to_string()), Some(hash));
        for bad in [
            "",
            "../../etc/passwd",
            &hash.to_string()[..63],
            &format!("{hash}0"),
            &hash.to_string().to_uppercase(),
            &format!("{}/x", &hash.to_string()[..62]),
        ] {
            assert_eq!(ComponentHash::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn engines_configured_alike_share_a_key_and_others_do_not() {
        let engine = |epoch: bool| {
            let mut config = wasmtime::Config::new();
            config.epoch_interruption(epoch);
            Engine::new(&config).unwrap()
        };
        assert_eq!(EngineKey::of(&engine(true)), EngineKey::of(&engine(true)));
        assert_ne!(EngineKey::of(&engine(true)), EngineKey::of(&engine(false)));
    }
}
