//! The partition a producer chose for a key, so a search by key reads one
//! partition instead of all of them. librdkafka's built-ins (confluent-kafka
//! in Python, Go and .NET) and the Java client's are three hashes: murmur2
//! (the Java client's default, Kafka Streams, librdkafka's `murmur2` and
//! `murmur2_random`), CRC32 (librdkafka's default `consistent_random`, and
//! `consistent`) and FNV-1a (librdkafka's `fnv1a` and `fnv1a_random`, which
//! it made agree with Go's Sarama). Each hash has two names because
//! librdkafka's variants differ in the keys they do not hash: a null key
//! (and, under `consistent_random`, an empty one) goes to a partition
//! chosen at random or stuck to for a while, which no search can predict.
//! A producer with a partitioner of its own, or a topic that gained
//! partitions since, puts keys elsewhere: the search can then be asked to
//! read every partition.

use std::fmt;
use std::str::FromStr;

/// A producer's way of turning a key into a partition, by the name
/// librdkafka's `partitioner` setting gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioner {
    /// `toPositive(murmur2(key)) % partitions`, murmur2 with Kafka's seed:
    /// the Java client's `BuiltInPartitioner` for a key, librdkafka's
    /// `murmur2`, which hashes a null key as an empty one.
    Murmur2,
    /// librdkafka's `murmur2_random`: murmur2, a null key at random.
    Murmur2Random,
    /// librdkafka's `consistent`: `crc32(key) % partitions` (CRC-32/IEEE),
    /// a null or empty key to partition 0 (the CRC of nothing).
    Consistent,
    /// librdkafka's default, `consistent_random`: CRC32, a null or empty
    /// key at random.
    ConsistentRandom,
    /// librdkafka's `fnv1a`: `|fnv1a(key)| % partitions` (32-bit FNV-1a
    /// read as a signed number, its absolute value as Sarama takes it), a
    /// null key hashed as an empty one.
    Fnv1a,
    /// librdkafka's `fnv1a_random`: FNV-1a, a null key at random.
    Fnv1aRandom,
}

/// How librdkafka hashes a key with each of its partitioners.
enum Hash {
    Murmur2,
    Crc32,
    Fnv1a,
}

impl Partitioner {
    /// Every partitioner this knows.
    pub const ALL: [Partitioner; 6] = [
        Partitioner::Murmur2,
        Partitioner::Murmur2Random,
        Partitioner::Consistent,
        Partitioner::ConsistentRandom,
        Partitioner::Fnv1a,
        Partitioner::Fnv1aRandom,
    ];

    /// The ones a key search reads when none is named: the Java client's
    /// and librdkafka's defaults, two partitions at most.
    pub const DEFAULT: [Partitioner; 2] = [Partitioner::Murmur2, Partitioner::ConsistentRandom];

    /// The partition this partitioner gives `key` among `partitions`;
    /// `None` when there are no partitions or it chooses at random
    /// (an empty key under `consistent_random`).
    pub fn partition(self, key: &[u8], partitions: i32) -> Option<i32> {
        self.partition_of(Some(key), partitions)
    }

    /// [`Self::partition`] for a key that may be null, as librdkafka
    /// places it: the `_random` variants at random (`None`), the others
    /// hashing it as an empty key.
    pub fn partition_of(self, key: Option<&[u8]>, partitions: i32) -> Option<i32> {
        let count = u32::try_from(partitions).ok().filter(|n| *n > 0)?;
        let random = match self {
            Partitioner::ConsistentRandom => key.is_none_or(<[u8]>::is_empty),
            Partitioner::Murmur2Random | Partitioner::Fnv1aRandom => key.is_none(),
            Partitioner::Murmur2 | Partitioner::Consistent | Partitioner::Fnv1a => false,
        };
        if random {
            return None;
        }
        let key = key.unwrap_or_default();
        let hash = match self.hash() {
            Hash::Murmur2 => murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff,
            Hash::Crc32 => crc32fast::hash(key),
            Hash::Fnv1a => fnv1a(key),
        };
        i32::try_from(hash % count).ok()
    }

    fn hash(self) -> Hash {
        match self {
            Partitioner::Murmur2 | Partitioner::Murmur2Random => Hash::Murmur2,
            Partitioner::Consistent | Partitioner::ConsistentRandom => Hash::Crc32,
            Partitioner::Fnv1a | Partitioner::Fnv1aRandom => Hash::Fnv1a,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "murmur2",
            Partitioner::Murmur2Random => "murmur2_random",
            Partitioner::Consistent => "consistent",
            Partitioner::ConsistentRandom => "consistent_random",
            Partitioner::Fnv1a => "fnv1a",
            Partitioner::Fnv1aRandom => "fnv1a_random",
        }
    }
}

/// librdkafka's `rd_fnv1a`: 32-bit FNV-1a, read as a signed number and
/// made positive (`i32::MIN` stays itself, 2^31 unsigned, as the C code
/// leaves it). Hand-written: the `fnv` crate gives the 64-bit hash through
/// `Hasher`, and the sign step is librdkafka's own.
fn fnv1a(key: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let hash = key
        .iter()
        .fold(OFFSET, |h, b| (h ^ u32::from(*b)).wrapping_mul(PRIME));
    (hash as i32).wrapping_abs() as u32
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A partitioner name no producer this knows uses, or one that places keys
/// where no search can find them without reading every partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownPartitioner {
    #[error(
        "`{0}` is not a partitioner: murmur2, murmur2_random (Java clients), consistent, \
         consistent_random (librdkafka's default), fnv1a or fnv1a_random"
    )]
    Unknown(String),
    #[error("`{0}` puts keys in any partition: search every partition instead")]
    Random(String),
}

impl FromStr for Partitioner {
    type Err = UnknownPartitioner;

    /// The names librdkafka's `partitioner` setting takes, and `java`
    /// (murmur2), `crc32` and `librdkafka` (consistent_random).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let trimmed = name.trim().to_ascii_lowercase();
        if let Some(known) = Partitioner::ALL.iter().find(|p| p.name() == trimmed) {
            return Ok(*known);
        }
        match trimmed.as_str() {
            "java" => Ok(Partitioner::Murmur2),
            "crc32" | "librdkafka" => Ok(Partitioner::ConsistentRandom),
            "random" => Err(UnknownPartitioner::Random(name.to_owned())),
            _ => Err(UnknownPartitioner::Unknown(name.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own `UtilsTest.testMurmur2`: the Java client's hash of these
    /// keys, as a signed int.
    #[test]
    fn murmur2_is_the_java_clients_hash() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (key, java) in cases {
            let hash = murmur2::murmur2(key, murmur2::KAFKA_SEED);
            assert_eq!(hash as i32, java, "{}", String::from_utf8_lossy(key));
            // toPositive(h) % n, as the Java client computes it.
            let expected = (java & 0x7fff_ffff) % 7;
            assert_eq!(Partitioner::Murmur2.partition(key, 7), Some(expected));
            assert_eq!(Partitioner::Murmur2Random.partition(key, 7), Some(expected));
        }
    }

    #[test]
    fn consistent_random_is_crc32_of_the_key_and_random_for_an_empty_one() {
        // CRC-32/IEEE's check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        let expected = Some((0xcbf4_3926u32 % 32) as i32);
        assert_eq!(
            Partitioner::ConsistentRandom.partition(b"123456789", 32),
            expected
        );
        assert_eq!(
            Partitioner::Consistent.partition(b"123456789", 32),
            expected
        );
        assert_eq!(Partitioner::ConsistentRandom.partition(b"", 32), None);
        assert_eq!(Partitioner::ConsistentRandom.partition_of(None, 32), None);
        // `consistent` hashes nothing: the CRC of no bytes is 0.
        assert_eq!(Partitioner::Consistent.partition(b"", 32), Some(0));
        assert_eq!(Partitioner::Consistent.partition_of(None, 32), Some(0));
        assert_eq!(Partitioner::Murmur2.partition(b"k", 0), None);
    }

    /// librdkafka's own `unittest_fnv1a` (rdfnv1a.c): Go's `hash/fnv`
    /// 32-bit FNV-1a of these keys, made positive as librdkafka does.
    #[test]
    fn fnv1a_is_librdkafkas_hash() {
        let cases: [(&[u8], u32); 11] = [
            (b"kafka", 0x0d33_c4e1),
            (b"giberish123456789", 0x77a5_8295),
            (b"1234", 0x023b_dd03),
            (b"234", 0x2dea_3cd2),
            (b"34", 0x740f_a83e),
            (b"4", 0x310c_a263),
            (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x65cb_d69c),
            (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x6e49_c79a),
            (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0x69ee_d356),
            (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x6abc_c023),
            (b"", 0x7ee3_623b),
        ];
        for (key, hash) in cases {
            assert_eq!(fnv1a(key), hash, "{}", String::from_utf8_lossy(key));
            let expected = i32::try_from(hash % 32).ok();
            assert_eq!(Partitioner::Fnv1a.partition(key, 32), expected);
            assert_eq!(Partitioner::Fnv1aRandom.partition(key, 32), expected);
        }
        // A null key: hashed as an empty one, or placed at random.
        let empty = i32::try_from(0x7ee3_623bu32 % 32).ok();
        assert_eq!(Partitioner::Fnv1a.partition_of(None, 32), empty);
        assert_eq!(Partitioner::Fnv1aRandom.partition_of(None, 32), None);
    }

    #[test]
    fn a_null_key_is_hashed_as_an_empty_one_or_placed_at_random() {
        let empty = Partitioner::Murmur2.partition(b"", 32);
        assert!(empty.is_some());
        assert_eq!(Partitioner::Murmur2.partition_of(None, 32), empty);
        // An empty key is still a key to murmur2_random: hashed.
        assert_eq!(Partitioner::Murmur2Random.partition(b"", 32), empty);
        assert_eq!(Partitioner::Murmur2Random.partition_of(None, 32), None);
    }

    #[test]
    fn names_are_the_ones_clients_configure() {
        for partitioner in Partitioner::ALL {
            assert_eq!(partitioner.name().parse(), Ok(partitioner));
            assert_eq!(
                serde_json::to_value(partitioner).ok(),
                Some(serde_json::Value::from(partitioner.name()))
            );
        }
        assert_eq!(" Murmur2_Random".parse(), Ok(Partitioner::Murmur2Random));
        assert_eq!("java".parse(), Ok(Partitioner::Murmur2));
        assert_eq!("crc32".parse(), Ok(Partitioner::ConsistentRandom));
        assert_eq!(
            "random".parse::<Partitioner>(),
            Err(UnknownPartitioner::Random("random".into()))
        );
        let unknown = "sticky".parse::<Partitioner>().unwrap_err();
        assert!(unknown.to_string().contains("`sticky`"), "{unknown}");
    }
}
