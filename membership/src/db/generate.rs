//! Deterministic data set: the seeds' 50,301 members in 2,096 wards (with 256
//! municipalities in 9 provinces above them), scalable to millions for capacity runs.
//!
//! A fixed seed gives the same people, wards and ID numbers every time; dates are laid out
//! relative to an anchor day (today by default) so that "the last six months" always
//! holds data, with joins growing towards the present so trends are not flat.

use std::collections::HashSet;

use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use rusqlite::{params, Connection};

use crate::dates;

/// Members in the seeds' data set.
pub const DEFAULT_MEMBERS: u64 = 50_301;
/// Wards in the seeds' data set.
pub(crate) const WARDS: u32 = 2_096;
/// Default generator seed.
pub const DEFAULT_SEED: u64 = 0x5EED_2026;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    /// Number of members.
    pub members: u64,
    /// PRNG seed.
    pub seed: u64,
    /// Day number that counts as "today" for join dates.
    pub anchor_day: i64,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        Self {
            members: DEFAULT_MEMBERS,
            seed: DEFAULT_SEED,
            anchor_day: dates::today(),
        }
    }
}

/// Counts of what was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    /// Provinces.
    pub provinces: u32,
    /// Municipalities.
    pub municipalities: u32,
    /// Wards.
    pub wards: u32,
    /// Members.
    pub members: u64,
    /// Membership applications.
    pub applications: u64,
    /// Filled leadership positions.
    pub leadership: u64,
}

/// SplitMix64 (`rand_xoshiro`): small, fast, and good enough for synthetic data.
struct Rng(SplitMix64);

impl Rng {
    /// The generator whose state starts at `seed` (used as is, not hashed).
    fn new(seed: u64) -> Self {
        Self(SplitMix64::seed_from_u64(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const PROVINCES: [(&str, &str, u32); 9] = [
    ("EC", "Eastern Cape", 39),
    ("FS", "Free State", 23),
    ("GP", "Gauteng", 10),
    ("KZN", "KwaZulu-Natal", 54),
    ("LP", "Limpopo", 27),
    ("MP", "Mpumalanga", 20),
    ("NC", "Northern Cape", 31),
    ("NW", "North West", 22),
    ("WC", "Western Cape", 30),
];

const SYLLABLES: [&str; 24] = [
    "ma", "ba", "tho", "lo", "ndi", "ku", "se", "phu", "zwe", "ga", "mo", "ri", "tse", "nga", "vu",
    "la", "ko", "dla", "shi", "we", "na", "bo", "ye", "hle",
];
const FEMALE: [&str; 24] = [
    "Thandiwe",
    "Nomsa",
    "Lerato",
    "Palesa",
    "Zanele",
    "Ayanda",
    "Naledi",
    "Busisiwe",
    "Precious",
    "Anele",
    "Karabo",
    "Refilwe",
    "Sarah",
    "Maria",
    "Johanna",
    "Elizabeth",
    "Nokuthula",
    "Lindiwe",
    "Mpho",
    "Dineo",
    "Kgomotso",
    "Siphesihle",
    "Aisha",
    "Fatima",
];
const MALE: [&str; 24] = [
    "Sipho", "Thabo", "Bongani", "Mandla", "Themba", "Kagiso", "Tshepo", "Lungile", "Johannes",
    "Pieter", "David", "Michael", "Sibusiso", "Musa", "Lwazi", "Katlego", "Tebogo", "Vusi",
    "Andile", "Xolani", "Mohammed", "Yusuf", "Kabelo", "Neo",
];
const SURNAMES: [&str; 32] = [
    "Dlamini",
    "Nkosi",
    "Ndlovu",
    "Khumalo",
    "Mokoena",
    "Mahlangu",
    "Sithole",
    "Mthembu",
    "Zulu",
    "Mabaso",
    "Naidoo",
    "Botha",
    "Van der Merwe",
    "Pillay",
    "Molefe",
    "Mokoena",
    "Ngcobo",
    "Baloyi",
    "Shabalala",
    "Radebe",
    "Maseko",
    "Cele",
    "Hlongwane",
    "Coetzee",
    "Mkhize",
    "Tshabalala",
    "Gumede",
    "Nel",
    "Petersen",
    "Moloi",
    "Mazibuko",
    "Ntuli",
];

/// Leadership roles a ward can fill, with the share of wards that fill each.
pub(crate) const ROLES: [(&str, f64); 4] = [
    ("chairperson", 0.9),
    ("deputy-chairperson", 0.5),
    ("secretary", 0.8),
    ("treasurer", 0.7),
];

/// Membership statuses (code, description) and the share of members in each.
pub(crate) const STATUSES: [(&str, &str, f64); 4] = [
    ("active", "Paid-up member in good standing", 0.78),
    ("inactive", "Member who has not renewed", 0.10),
    ("suspended", "Membership suspended", 0.02),
    ("expired", "Membership lapsed", 0.10),
];

/// A South African-style 13-digit ID number: YYMMDD, a 4-digit sequence (0000-4999 female,
/// 5000-9999 male), citizenship 0, the digit 8, and a Luhn check digit.
pub fn id_number(birth_day: i64, sequence: u32) -> String {
    let (y, m, d) = dates::civil_from_days(birth_day);
    let body = format!("{:02}{m:02}{d:02}{sequence:04}08", y.rem_euclid(100));
    format!("{body}{}", luhn_check_digit(&body))
}

/// The Luhn check digit for a string of digits.
pub(crate) fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Whether `s` is a well-formed ID number: 13 digits, a real date, a valid check digit.
pub(crate) fn valid_id_number(s: &str) -> bool {
    if s.len() != 13 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (mm, dd) = (&s[2..4], &s[4..6]);
    // The century is not encoded; a date valid in a leap year is accepted.
    if dates::parse_day(&format!("2000-{mm}-{dd}")).is_none() {
        return false;
    }
    luhn_check_digit(&s[..12]) == u32::from(s.as_bytes()[12] - b'0')
}

fn place_name(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2);
    let mut s: String = (0..n).map(|_| *rng.pick(&SYLLABLES)).collect();
    s[..1].make_ascii_uppercase();
    s
}

/// Fills an empty, migrated database.
pub fn generate(con: &mut Connection, spec: &GenerateSpec) -> rusqlite::Result<Generated> {
    let mut rng = Rng::new(spec.seed);
    let tx = con.transaction()?;
    let mut out = Generated {
        provinces: 0,
        municipalities: 0,
        wards: 0,
        members: 0,
        applications: 0,
        leadership: 0,
    };
    for (code, desc, _) in STATUSES {
        tx.execute(
            "INSERT INTO membership_statuses (code, description) VALUES (?1, ?2)",
            params![code, desc],
        )?;
    }
    let mut municipality_ids = Vec::new();
    {
        let mut ins_p = tx.prepare("INSERT INTO provinces (id, code, name) VALUES (?1, ?2, ?3)")?;
        let mut ins_m =
            tx.prepare("INSERT INTO municipalities (id, name, province_id) VALUES (?1, ?2, ?3)")?;
        for (pi, (code, name, munis)) in PROVINCES.iter().enumerate() {
            let pid = pi as i64 + 1;
            ins_p.execute(params![pid, code, name])?;
            out.provinces += 1;
            for _ in 0..*munis {
                let mid = municipality_ids.len() as i64 + 1;
                ins_m.execute(params![
                    mid,
                    format!("{} Local Municipality", place_name(&mut rng)),
                    pid
                ])?;
                municipality_ids.push(mid);
                out.municipalities += 1;
            }
        }
    }
    // Wards spread over municipalities in order, 8 or 9 each; each ward gets a weight so
    // that membership is uneven (some wards are several times larger than others).
    let mut ward_weights = Vec::with_capacity(WARDS as usize);
    {
        let mut ins_w = tx.prepare(
            "INSERT INTO wards (id, code, name, municipality_id) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let per = municipality_ids.len() as u64;
        let (mut last_mid, mut n) = (0, 0);
        for w in 0..u64::from(WARDS) {
            let mid = municipality_ids[(w * per / u64::from(WARDS)) as usize];
            n = if mid == last_mid { n + 1 } else { 1 };
            last_mid = mid;
            ins_w.execute(params![
                w as i64 + 1,
                format!("W{mid:03}{n:02}"),
                format!("Ward {n}"),
                mid
            ])?;
            ward_weights.push(0.2 + 2.8 * rng.unit() * rng.unit());
            out.wards += 1;
        }
    }
    let total_weight: f64 = ward_weights.iter().sum();
    let cumulative: Vec<f64> = ward_weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total_weight;
            Some(*acc)
        })
        .collect();
    let pick_ward = |rng: &mut Rng| -> i64 {
        let u = rng.unit();
        cumulative
            .partition_point(|c| *c < u)
            .min(cumulative.len() - 1) as i64
            + 1
    };

    let anchor = spec.anchor_day;
    let today = dates::format_day(anchor);
    let mut used_ids: HashSet<String> = HashSet::with_capacity(spec.members as usize * 2);
    let person = |rng: &mut Rng, used: &mut HashSet<String>| {
        let female = rng.unit() < 0.52;
        // Ages 18-85, skewed young.
        let age_days = (18.0 * 365.25 + 67.0 * 365.25 * rng.unit().powf(1.4)) as i64;
        let birth = anchor - age_days;
        let id = loop {
            let seq = rng.below(5000) as u32 + if female { 0 } else { 5000 };
            let id = id_number(birth, seq);
            if used.insert(id.clone()) {
                break id;
            }
        };
        let first = if female {
            *rng.pick(&FEMALE)
        } else {
            *rng.pick(&MALE)
        };
        let last = *rng.pick(&SURNAMES);
        let email = format!(
            "{}.{}{}@example.org",
            first.to_lowercase(),
            last.to_lowercase().replace(' ', ""),
            rng.below(1000)
        );
        let phone = format!("+27{}", 600_000_000 + rng.below(200_000_000));
        (
            id,
            first,
            last,
            if female { "female" } else { "male" },
            dates::format_day(birth),
            email,
            phone,
        )
    };

    // Members: joins over the last six years, denser towards the anchor day.
    let mut ward_members: Vec<Vec<i64>> = vec![Vec::new(); WARDS as usize];
    let mut member_rows: Vec<(String, &str, &str, &str, String, i64)> = Vec::new();
    {
        let mut ins = tx.prepare(
            "INSERT INTO members (id, id_number, first_name, last_name, gender, birth_date, join_date, \
             ward_id, status, email, phone, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for i in 0..spec.members {
            let id = i as i64 + 1;
            let (idn, first, last, gender, birth, email, phone) = person(&mut rng, &mut used_ids);
            let join = anchor - (6.0 * 365.0 * rng.unit().powf(1.6)) as i64;
            let ward = pick_ward(&mut rng);
            let u = rng.unit();
            let mut acc = 0.0;
            let status = STATUSES
                .iter()
                .find(|(_, _, share)| {
                    acc += share;
                    u < acc
                })
                .map(|s| s.0)
                .unwrap_or("active");
            ins.execute(params![
                id,
                idn,
                first,
                last,
                gender,
                birth,
                dates::format_day(join),
                ward,
                status,
                email,
                phone,
                today
            ])?;
            if status == "active" {
                ward_members[(ward - 1) as usize].push(id);
            }
            if member_rows.len() < 4096 {
                member_rows.push((idn, first, last, gender, birth, ward));
            }
            out.members += 1;
        }
    }

    // Applications: 3% of the membership. Approved ones point at members; pending and
    // rejected ones are new people.
    {
        let mut ins = tx.prepare(
            "INSERT INTO membership_applications (id_number, first_name, last_name, gender, birth_date, \
             ward_id, email, phone, status, submitted_at, decided_at, reason, member_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let count = (spec.members * 3 / 100).max(1);
        for _ in 0..count {
            let u = rng.unit();
            let submitted = anchor - rng.below(365) as i64;
            let decided = dates::format_day((submitted + 1 + rng.below(30) as i64).min(anchor));
            if u < 0.45 && !member_rows.is_empty() && spec.members > 0 {
                let m = rng.below(member_rows.len() as u64) as usize;
                let (idn, first, last, gender, birth, ward) = &member_rows[m];
                ins.execute(params![
                    idn,
                    first,
                    last,
                    gender,
                    birth,
                    ward,
                    None::<String>,
                    None::<String>,
                    "approved",
                    dates::format_day(submitted),
                    decided,
                    None::<String>,
                    m as i64 + 1
                ])?;
            } else {
                let (idn, first, last, gender, birth, email, phone) =
                    person(&mut rng, &mut used_ids);
                let ward = pick_ward(&mut rng);
                let (status, decided, reason) = if u < 0.85 {
                    ("pending", None, None)
                } else {
                    ("rejected", Some(decided), Some("incomplete documentation"))
                };
                ins.execute(params![
                    idn,
                    first,
                    last,
                    gender,
                    birth,
                    ward,
                    email,
                    phone,
                    status,
                    dates::format_day(submitted),
                    decided,
                    reason,
                    None::<i64>
                ])?;
            }
            out.applications += 1;
        }
    }

    // Leadership: each role filled in a share of wards by an active member of that ward.
    {
        let mut ins = tx.prepare(
            "INSERT INTO ward_leadership (ward_id, role, member_id, since) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (w, members) in ward_members.iter().enumerate() {
            let mut taken = HashSet::new();
            for (role, share) in ROLES {
                if members.is_empty() || rng.unit() >= share {
                    continue;
                }
                let m = *rng.pick(members);
                if !taken.insert(m) {
                    continue;
                }
                let since = dates::format_day(anchor - rng.below(3 * 365) as i64);
                ins.execute(params![w as i64 + 1, role, m, since])?;
                out.leadership += 1;
            }
        }
    }
    tx.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_carry_a_valid_luhn_digit() {
        let day = dates::parse_day("1990-07-15").unwrap();
        let id = id_number(day, 5123);
        assert_eq!(&id[..10], "9007155123");
        assert!(valid_id_number(&id), "{id}");
        let mut bad = id.clone().into_bytes();
        bad[12] = if bad[12] == b'9' { b'0' } else { bad[12] + 1 };
        assert!(!valid_id_number(std::str::from_utf8(&bad).unwrap()));
        assert!(!valid_id_number("9013155123081"), "month 13");
        assert!(!valid_id_number("12345"));
        assert!(!valid_id_number("90071551230a1"));
    }

    /// The generator's stream: SplitMix64 from the seed (values recorded from the
    /// hand-written version `rand_xoshiro` replaced).
    #[test]
    fn the_random_stream_is_splitmix64_of_the_seed() {
        let mut rng = Rng::new(DEFAULT_SEED);
        assert_eq!(rng.next(), 0x2cb0_f011_63f3_5aaf);
        assert_eq!(rng.next(), 0xfed5_520e_f296_891c);
        assert_eq!(rng.next(), 0x71b0_a4ea_8e5b_c648);
    }

    /// FNV-1a over every row of every generated table, in key order: a fixed seed and
    /// anchor must keep giving byte-identical data.
    #[test]
    fn a_fixed_spec_generates_identical_data() {
        let mut con = Connection::open_in_memory().unwrap();
        crate::db::schema::migrate(&con).unwrap();
        let spec = GenerateSpec {
            members: 1500,
            seed: DEFAULT_SEED,
            anchor_day: dates::parse_day("2026-01-01").unwrap(),
        };
        let g = generate(&mut con, &spec).unwrap();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (table, order) in [
            ("provinces", "id"),
            ("municipalities", "id"),
            ("wards", "id"),
            ("membership_statuses", "code"),
            ("members", "id"),
            ("membership_applications", "rowid"),
            ("ward_leadership", "ward_id, role"),
        ] {
            let mut st = con
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .unwrap();
            let cols = st.column_count();
            let mut rows = st.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                for c in 0..cols {
                    let v: rusqlite::types::Value = row.get(c).unwrap();
                    for b in format!("{v:?}|").bytes() {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                }
            }
        }
        assert_eq!(
            (g.wards, g.members, g.applications, g.leadership),
            (2096, 1500, 45, 1023)
        );
        assert_eq!(h, 0xc6da_7e45_baaa_f2f1, "digest {h:#x}, counts {g:?}");
    }
}
