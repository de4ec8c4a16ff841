//! The operation shares of a `mixed` step ([`Mix`]): whole-number weights
//! of GET, STAT (HEAD), PUT and DELETE, written `get=45,stat=30,put=15,
//! delete=10` on the command line or in a scenario (a string, or a table
//! `{ get = 45, ... }`). The default is the mix MinIO's warp uses, so a
//! figure here compares with one from it. Pure: picking an operation takes
//! the caller's random generator.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::limits::MIX_WEIGHT_MAX;

/// What a mixed step does next, before a key is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixOp {
    Get,
    Stat,
    Put,
    Delete,
}

/// Weights of each operation; shares are weight / sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MixRepr")]
pub struct Mix {
    pub get: u32,
    pub stat: u32,
    pub put: u32,
    pub delete: u32,
}

/// GET 45 %, STAT 30 %, PUT 15 %, DELETE 10 %.
pub const MIX_DEFAULT: Mix = Mix {
    get: 45,
    stat: 30,
    put: 15,
    delete: 10,
};

/// `read_fraction` (the old two-way mix) becomes weights out of this many,
/// fine enough that 0.7 stays 0.7.
const READ_FRACTION_PARTS: u32 = 1_000_000;

const _: () = assert!(READ_FRACTION_PARTS <= MIX_WEIGHT_MAX);

impl Mix {
    /// GETs with share `fraction`, PUTs the rest: what `read_fraction`
    /// meant before STAT and DELETE joined the mix. `fraction` is within
    /// 0..=1 (checked by the caller).
    pub fn from_read_fraction(fraction: f64) -> Mix {
        let get = (fraction.clamp(0.0, 1.0) * READ_FRACTION_PARTS as f64).round() as u32;
        Mix {
            get,
            stat: 0,
            put: READ_FRACTION_PARTS - get,
            delete: 0,
        }
    }

    fn total(&self) -> u64 {
        [self.get, self.stat, self.put, self.delete]
            .iter()
            .map(|&w| u64::from(w))
            .sum()
    }

    /// The share of `op`, 0..=1.
    pub fn share(&self, op: MixOp) -> f64 {
        let weight = match op {
            MixOp::Get => self.get,
            MixOp::Stat => self.stat,
            MixOp::Put => self.put,
            MixOp::Delete => self.delete,
        };
        f64::from(weight) / self.total() as f64
    }

    /// One operation, each with its share of the chances.
    pub fn pick(&self, rng: &mut impl Rng) -> MixOp {
        let mut roll = rng.gen_range(0..self.total());
        for (op, weight) in [
            (MixOp::Get, self.get),
            (MixOp::Stat, self.stat),
            (MixOp::Put, self.put),
        ] {
            if roll < u64::from(weight) {
                return op;
            }
            roll -= u64::from(weight);
        }
        MixOp::Delete
    }

    fn check(self) -> Result<Mix, String> {
        if let Some(w) = [self.get, self.stat, self.put, self.delete]
            .into_iter()
            .find(|&w| w > MIX_WEIGHT_MAX)
        {
            return Err(format!("weight {w} is over {MIX_WEIGHT_MAX}"));
        }
        if self.total() == 0 {
            return Err("at least one weight must be positive".into());
        }
        Ok(self)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "get={},stat={},put={},delete={}",
            self.get, self.stat, self.put, self.delete
        )
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `get=45,stat=30,put=15,delete=10`; a kind left out weighs 0.
    fn from_str(text: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            get: 0,
            stat: 0,
            put: 0,
            delete: 0,
        };
        let mut seen = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=weight, e.g. get=45"))?;
            let (name, weight) = (name.trim(), weight.trim());
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            let slot = match name {
                "get" => &mut mix.get,
                "stat" => &mut mix.stat,
                "put" => &mut mix.put,
                "delete" => &mut mix.delete,
                _ => return Err(format!("{name:?}: kinds are get, stat, put, delete")),
            };
            if seen.contains(&name) {
                return Err(format!("{name:?} is given twice"));
            }
            seen.push(name);
            *slot = weight;
        }
        mix.check()
    }
}

impl Serialize for Mix {
    /// As shares (fractions that sum to 1), the unit a reader compares.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Mix", 4)?;
        out.serialize_field("get", &self.share(MixOp::Get))?;
        out.serialize_field("stat", &self.share(MixOp::Stat))?;
        out.serialize_field("put", &self.share(MixOp::Put))?;
        out.serialize_field("delete", &self.share(MixOp::Delete))?;
        out.end()
    }
}

/// How a scenario writes a mix: the flag's string, or a table.
#[derive(Deserialize)]
#[serde(untagged)]
enum MixRepr {
    Text(String),
    Table(MixTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixTable {
    #[serde(default)]
    get: u32,
    #[serde(default)]
    stat: u32,
    #[serde(default)]
    put: u32,
    #[serde(default)]
    delete: u32,
}

impl TryFrom<MixRepr> for Mix {
    type Error = String;

    fn try_from(repr: MixRepr) -> Result<Mix, String> {
        match repr {
            MixRepr::Text(text) => text.parse(),
            MixRepr::Table(t) => Mix {
                get: t.get,
                stat: t.stat,
                put: t.put,
                delete: t.delete,
            }
            .check(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn picks_follow_the_shares() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let n = 40_000;
        let mut counts = [0u32; 4];
        for _ in 0..n {
            counts[MIX_DEFAULT.pick(&mut rng) as usize] += 1;
        }
        for (i, want) in [0.45, 0.30, 0.15, 0.10].into_iter().enumerate() {
            let got = f64::from(counts[i]) / f64::from(n);
            assert!((got - want).abs() < 0.01, "op {i}: {got} for {want}");
        }
    }

    #[test]
    fn a_zero_weight_is_never_picked() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mix: Mix = "get=1,delete=1".parse().unwrap();
        for _ in 0..2_000 {
            assert!(matches!(mix.pick(&mut rng), MixOp::Get | MixOp::Delete));
        }
        let only_put: Mix = "put=5".parse().unwrap();
        assert!((0..100).all(|_| only_put.pick(&mut rng) == MixOp::Put));
    }

    #[test]
    fn text_parses_and_prints_back() {
        let mix: Mix = " get=45, stat=30,put=15 ,delete=10".parse().unwrap();
        assert_eq!(mix, MIX_DEFAULT);
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix);
        assert_eq!(mix.share(MixOp::Stat), 0.3);
    }

    #[test]
    fn bad_text_says_what_is_wrong() {
        for (text, needle) in [
            ("get=45,head=3", "kinds are"),
            ("get", "kind=weight"),
            ("get=4.5", "whole number"),
            ("get=-1", "whole number"),
            ("get=1,get=2", "twice"),
            ("get=0,put=0", "positive"),
            ("", "positive"),
            ("get=4000000000", "over"),
        ] {
            let err = text.parse::<Mix>().unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn read_fraction_maps_onto_get_and_put() {
        let mix = Mix::from_read_fraction(0.7);
        assert!((mix.share(MixOp::Get) - 0.7).abs() < 1e-9);
        assert!((mix.share(MixOp::Put) - 0.3).abs() < 1e-9);
        assert_eq!((mix.stat, mix.delete), (0, 0));
        assert_eq!(Mix::from_read_fraction(1.0).put, 0);
    }

    #[test]
    fn scenarios_write_a_string_or_a_table() {
        #[derive(Deserialize)]
        struct Holder {
            mix: Mix,
        }
        let text: Holder = toml::from_str("mix = \"get=1,put=1\"").unwrap();
        assert_eq!((text.mix.get, text.mix.put, text.mix.stat), (1, 1, 0));
        let table: Holder =
            toml::from_str("mix = { get = 45, stat = 30, put = 15, delete = 10 }").unwrap();
        assert_eq!(table.mix, MIX_DEFAULT);
        let err = toml::from_str::<Holder>("mix = \"get=x\"")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("whole number"), "{err}");
    }
}
