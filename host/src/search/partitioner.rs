//! The partition a producer chose for a key, so a search by key reads one
//! partition instead of all of them. Two hashes cover the clients teams
//! run: murmur2 (the Java client's default, Kafka Streams, librdkafka's
//! `murmur2_random`) and CRC32 (librdkafka's default, `consistent_random`,
//! so confluent-kafka in Python, Go and .NET). A producer with a partitioner
//! of its own, or a topic that gained partitions since, puts keys elsewhere:
//! the search can then be asked to read every partition.

use std::fmt;
use std::str::FromStr;

/// A producer's way of turning a key into a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioner {
    /// `toPositive(murmur2(key)) % partitions`, murmur2 with Kafka's seed:
    /// the Java client's `BuiltInPartitioner`, librdkafka's `murmur2` and
    /// `murmur2_random`.
    Murmur2,
    /// `crc32(key) % partitions` (CRC-32/IEEE): librdkafka's default,
    /// `consistent_random`, and `consistent`.
    ConsistentRandom,
}

impl Partitioner {
    pub const ALL: [Partitioner; 2] = [Partitioner::Murmur2, Partitioner::ConsistentRandom];

    /// The partition this partitioner gives `key` among `partitions`;
    /// `None` when it chooses at random (librdkafka's `consistent_random`
    /// for an empty key) or there are no partitions.
    pub fn partition(self, key: &[u8], partitions: i32) -> Option<i32> {
        let count = u32::try_from(partitions).ok().filter(|n| *n > 0)?;
        let hash = match self {
            Partitioner::Murmur2 => murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff,
            Partitioner::ConsistentRandom if key.is_empty() => return None,
            Partitioner::ConsistentRandom => crc32fast::hash(key),
        };
        i32::try_from(hash % count).ok()
    }

    pub fn name(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "murmur2",
            Partitioner::ConsistentRandom => "consistent_random",
        }
    }
}

impl fmt::Display for Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A partitioner name no producer this knows uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a partitioner: murmur2 (Java clients) or consistent_random (librdkafka)")]
pub struct UnknownPartitioner(pub String);

impl FromStr for Partitioner {
    type Err = UnknownPartitioner;

    /// The names clients configure: librdkafka's `partitioner` values
    /// (its `_random` variants hash keys the same way) and `java`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "murmur2" | "murmur2_random" | "java" => Ok(Partitioner::Murmur2),
            "consistent_random" | "consistent" | "crc32" | "librdkafka" => {
                Ok(Partitioner::ConsistentRandom)
            }
            _ => Err(UnknownPartitioner(name.to_owned())),
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
        }
    }

    #[test]
    fn consistent_random_is_crc32_of_the_key_and_random_for_an_empty_one() {
        // CRC-32/IEEE's check value.
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            Partitioner::ConsistentRandom.partition(b"123456789", 32),
            Some((0xcbf4_3926u32 % 32) as i32)
        );
        assert_eq!(Partitioner::ConsistentRandom.partition(b"", 32), None);
        assert_eq!(Partitioner::Murmur2.partition(b"k", 0), None);
    }

    #[test]
    fn names_are_the_ones_clients_configure() {
        assert_eq!("murmur2_random".parse(), Ok(Partitioner::Murmur2));
        assert_eq!(
            " Consistent_Random".parse(),
            Ok(Partitioner::ConsistentRandom)
        );
        assert!("fnv1a".parse::<Partitioner>().is_err());
    }
}
