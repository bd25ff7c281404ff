//! Configuration validation: every rejected case yields its own message.

use redis_harness::config::HarnessConfig;

fn rejected(yaml: &str) -> String {
    HarnessConfig::from_yaml(yaml, "test.yaml")
        .expect_err("config must be rejected")
        .to_string()
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let msg = rejected("topology:\n  replica: 2\n");
    assert!(msg.contains("unknown field `replica`"), "{msg}");
    let msg = rejected("colour: blue\n");
    assert!(msg.contains("unknown field `colour`"), "{msg}");
}

#[test]
fn quorum_above_sentinels() {
    let msg = rejected("topology:\n  sentinels: 3\n  quorum: 4\n");
    assert!(
        msg.contains("topology.quorum: must not exceed topology.sentinels (3) (got 4)"),
        "{msg}"
    );
}

#[test]
fn zero_sentinels_with_a_quorum() {
    let msg = rejected("topology:\n  sentinels: 0\n  quorum: 2\n");
    assert!(
        msg.contains("topology.quorum: must be 0 when topology.sentinels is 0"),
        "{msg}"
    );
    assert!(HarnessConfig::from_yaml("topology:\n  sentinels: 0\n  quorum: 0\n", "t").is_ok());
}

#[test]
fn port_out_of_range() {
    let msg = rejected("ports:\n  base: 65533\n");
    assert!(
        msg.contains("ports.base: the 6 ports from the base must lie within 1024..=65535"),
        "{msg}"
    );
    let msg = rejected("ports:\n  base: 80\n");
    assert!(msg.contains("ports.base"), "{msg}");
}

#[test]
fn negative_timings() {
    let msg = rejected("sentinel:\n  down_after_ms: -5\n");
    assert!(
        msg.contains("sentinel.down_after_ms: must be a positive number of milliseconds (got -5)"),
        "{msg}"
    );
    let msg = rejected("sentinel:\n  failover_timeout_ms: 0\n");
    assert!(msg.contains("sentinel.failover_timeout_ms"), "{msg}");
    let msg = rejected("sentinel:\n  parallel_syncs: 0\n");
    assert!(
        msg.contains("sentinel.parallel_syncs: must be at least 1"),
        "{msg}"
    );
}

#[test]
fn other_rules() {
    assert!(
        rejected("persistence:\n  appendfsync: sometimes\n").contains("persistence.appendfsync")
    );
    assert!(rejected("persistence:\n  rdb_save: \"60\"\n").contains("persistence.rdb_save"));
    assert!(rejected("memory:\n  maxmemory: lots\n").contains("memory.maxmemory"));
    assert!(rejected("memory:\n  policy: lru\n").contains("memory.policy: must be one of"));
    assert!(rejected("replication:\n  min_replicas_to_write: 3\n")
        .contains("replication.min_replicas_to_write: must be between 0 and topology.replicas (2) (got 3)"));
    assert!(rejected("ports:\n  bind: localhost:1\n").contains("ports.bind"));
    assert!(rejected("name: \"a b\"\n").contains("name: must be non-empty"));
    assert!(rejected("password: \"\"\n").contains("password: must be non-empty"));
}

#[test]
fn wrong_types_name_the_field() {
    let msg = rejected("topology:\n  replicas: many\n");
    assert!(msg.contains("replicas"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let msg = rejected("topology:\n  sentinels: 1\n  quorum: 2\nsentinel:\n  down_after_ms: -1\n");
    assert!(msg.contains("topology.quorum"), "{msg}");
    assert!(msg.contains("sentinel.down_after_ms"), "{msg}");
}

#[test]
fn empty_binary_and_run_dir_are_rejected_naming_the_field() {
    let msg = rejected("redis_server: \"\"\n");
    assert!(msg.contains("redis_server: must not be empty"), "{msg}");
    let msg = rejected("run_dir: \"\"\n");
    assert!(msg.contains("run_dir: must not be empty"), "{msg}");
    // Both at once, like every other rule.
    let msg = rejected("redis_server: \"\"\nrun_dir: \"\"\n");
    assert!(
        msg.contains("redis_server:") && msg.contains("run_dir:"),
        "{msg}"
    );
}

#[test]
fn docker_publish_defaults_off_and_must_be_a_bool() {
    assert!(!HarnessConfig::default().docker.publish);
    let cfg = HarnessConfig::from_yaml("docker:\n  publish: true\n", "t").unwrap();
    assert!(cfg.docker.publish);
    let msg = rejected("docker:\n  publish: everywhere\n");
    assert!(msg.contains("publish"), "{msg}");
}

#[test]
fn docker_console_settings() {
    let cfg = HarnessConfig::default();
    assert!(cfg.docker.console && !cfg.docker.console_allow_write);
    assert_eq!(cfg.docker.console_image, "redis-harness/console:offline");
    assert_eq!(cfg.docker.console_port, 0);
    let ok = "docker:\n  console: false\n  console_port: 8081\n  console_allow_write: true\n";
    let cfg = HarnessConfig::from_yaml(ok, "t").unwrap();
    assert!(!cfg.docker.console && cfg.docker.console_allow_write);
    assert_eq!(cfg.docker.console_port, 8081);
    let msg = rejected("docker:\n  console_port: 80\n");
    assert!(
        msg.contains("docker.console_port: 0 (the engine picks a free port) or a port within 1024..=65535 (got 80)"),
        "{msg}"
    );
    assert!(rejected("docker:\n  console_port: 70000\n").contains("docker.console_port"));
    let msg = rejected("docker:\n  console_image: console\n");
    assert!(
        msg.contains("docker.console_image: must be name:tag"),
        "{msg}"
    );
}

#[test]
fn drill_clients_are_checked_and_name_the_problem() {
    let msg = rejected("drill:\n  clients: [sentinel-events, raft-client]\n");
    assert!(
        msg.contains("unknown client model \"raft-client\""),
        "{msg}"
    );
    assert!(
        msg.contains("reresolve-on-error"),
        "the models are listed: {msg}"
    );
    let msg = rejected("drill:\n  clients:\n    - {name: app, cmd: ./app}\n");
    assert!(msg.contains("{name, command}"), "{msg}");
    let msg = rejected("drill:\n  clients: [fixed-address, fixed-address]\n");
    assert!(msg.contains("\"fixed-address\" appears twice"), "{msg}");
    let msg = rejected("drill:\n  clients:\n    - {name: Bad.Name, command: ./app}\n");
    assert!(msg.contains("client name \"Bad.Name\""), "{msg}");
    let msg = rejected("drill:\n  clients:\n    - {name: fixed-address, command: ./app}\n");
    assert!(msg.contains("is a built-in model's name"), "{msg}");
    let msg = rejected("drill:\n  clients:\n    - {name: app, command: \"python3 'unclosed\"}\n");
    assert!(msg.contains("cannot split its command"), "{msg}");
    let msg = rejected("drill:\n  clients: []\n");
    assert!(msg.contains("name at least one client"), "{msg}");
    let msg =
        rejected("drill:\n  gates:\n    clients:\n      app: {max_lost_acked_percent: 150}\n");
    assert!(
        msg.contains("drill.gates.clients.app.max_lost_acked_percent: between 0 and 100"),
        "{msg}"
    );
}
