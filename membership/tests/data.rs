//! The generated data set: exact seed counts, determinism, and trends that are not flat.

use membership::db::generate::{generate, GenerateSpec, DEFAULT_MEMBERS};
use membership::db::{queries, schema};
use rusqlite::Connection;

fn fresh(spec: &GenerateSpec) -> Connection {
    let mut con = Connection::open_in_memory().unwrap();
    schema::migrate(&con).unwrap();
    generate(&mut con, spec).unwrap();
    con
}

#[test]
fn default_data_set_matches_the_seeds() {
    let con = fresh(&GenerateSpec::default());
    let stats = queries::system_statistics(&con).unwrap();
    assert_eq!(stats["total_members"], DEFAULT_MEMBERS);
    assert_eq!(stats["total_members"], 50_301);
    assert_eq!(stats["total_wards"], 2_096);
    assert_eq!(stats["total_provinces"], 9);
    assert!(stats["pending_applications"].as_i64().unwrap() > 0);
    let demo = queries::demographics(&con).unwrap();
    let f = demo["gender"]["female"].as_i64().unwrap();
    let m = demo["gender"]["male"].as_i64().unwrap();
    assert_eq!(f + m, 50_301);
    assert!(
        (0.45..0.6).contains(&(f as f64 / 50_301.0)),
        "realistic gender split"
    );
    // Six months of trend, none empty, not all equal, growing towards the present.
    let trend = queries::membership_trends(&con, 6).unwrap();
    let months: Vec<i64> = trend["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["new_members"].as_i64().unwrap())
        .collect();
    assert_eq!(months.len(), 6);
    assert!(months[..5].iter().all(|n| *n > 0), "{months:?}");
    assert!(
        months.windows(2).any(|w| w[0] != w[1]),
        "trend is flat: {months:?}"
    );
    let years = queries::analytics_comprehensive(&con).unwrap()["joins_by_year"]
        .as_object()
        .unwrap()
        .len();
    assert!(years >= 6, "joins spread over several years ({years})");
}

#[test]
fn the_same_seed_gives_the_same_people_and_another_seed_does_not() {
    let spec = GenerateSpec {
        members: 3_000,
        seed: 42,
        anchor_day: 20_000,
    };
    let dump = |con: &Connection| -> Vec<String> {
        let mut st = con
            .prepare(
                "SELECT id_number || first_name || ward_id || join_date FROM members ORDER BY id",
            )
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let a = dump(&fresh(&spec));
    assert_eq!(a.len(), 3_000);
    assert_eq!(a, dump(&fresh(&spec)));
    assert_ne!(a, dump(&fresh(&GenerateSpec { seed: 43, ..spec })));
    let unique: std::collections::HashSet<_> = a.iter().map(|s| &s[..13]).collect();
    assert_eq!(unique.len(), 3_000, "ID numbers are unique");
}
