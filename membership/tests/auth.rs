//! `RedisAuth` against real servers: a master whose only usable login is the ACL user
//! `app` (the `default` user is off) and a Sentinel with a `requirepass` of its own (and
//! `sentinel auth-user` / `auth-pass` to monitor that master). A link with both logins
//! resolves, reads, writes and subscribes; a wrong Sentinel or data-node login fails with
//! an error that says authentication.

mod common;

use std::time::{Duration, Instant};

use common::sentinel::Sentinel;
use common::*;
use membership::{Follow, LinkError, RedisAuth, RedisLink, RedisTarget};

const NAME: &str = "authmaster";
const USER: &str = "app";
const USER_PW: &str = "apppw";
const SENTINEL_PW: &str = "sentinelpw";

/// The master (ACL user `app`, `default` off) and its Sentinel (`requirepass`). Both are
/// killed when dropped, a failing test included.
async fn topology() -> (RedisServer, Sentinel) {
    let master = RedisServer::start();
    let mut con = master.con().await;
    let acl = |args: &[&str]| {
        let mut cmd = redis::cmd("ACL");
        cmd.arg(args);
        cmd
    };
    let _: () = acl(&[
        "SETUSER",
        USER,
        "on",
        &format!(">{USER_PW}"),
        "~*",
        "&*",
        "+@all",
    ])
    .query_async(&mut con)
    .await
    .expect("ACL SETUSER app");
    // Connections already logged in as `default` keep working; new ones cannot use it.
    let _: () = acl(&["SETUSER", "default", "off"])
        .query_async(&mut con)
        .await
        .expect("ACL SETUSER default off");
    let anonymous = redis::Client::open(format!("redis://{}/", master.addr()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await;
    if let Ok(mut c) = anonymous {
        let pong = redis::cmd("PING").query_async::<String>(&mut c).await;
        assert!(pong.is_err(), "the default user still answers: {pong:?}");
    }
    let sentinel = Sentinel::start_with_password(
        NAME,
        master.port(),
        &[
            &format!("sentinel auth-user {{name}} {USER}"),
            &format!("sentinel auth-pass {{name}} {USER_PW}"),
        ],
        SENTINEL_PW,
    );
    (master, sentinel)
}

fn link(sentinel: &Sentinel, auth: RedisAuth) -> std::sync::Arc<RedisLink> {
    RedisLink::with(
        RedisTarget::Sentinel {
            sentinels: vec![("127.0.0.1".to_string(), sentinel.port())],
            master_name: NAME.to_string(),
        },
        auth,
        0,
        Duration::from_millis(500),
    )
}

fn right_auth() -> RedisAuth {
    RedisAuth {
        username: Some(USER.into()),
        password: Some(USER_PW.into()),
        sentinel_username: None,
        sentinel_password: Some(SENTINEL_PW.into()),
    }
}

async fn ping(link: &RedisLink) -> Result<String, LinkError> {
    link.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_logins_resolve_read_write_and_subscribe() {
    let (master, sentinel) = topology().await;
    let link = link(&sentinel, right_auth());

    link.run(|mut c| async move {
        redis::cmd("SET")
            .arg("auth:key")
            .arg("through the link")
            .query_async::<()>(&mut c)
            .await
    })
    .await
    .expect("SET through a link with both logins");
    let got = link
        .run(|mut c| async move {
            redis::cmd("GET")
                .arg("auth:key")
                .query_async::<String>(&mut c)
                .await
        })
        .await
        .expect("GET through a link with both logins");
    assert_eq!(got, "through the link");
    assert_eq!(link.address(), Some(master.addr()));

    // The SUBSCRIBE listeners log in to the Sentinel too: all three channels of
    // Follow::Promotion get subscribed (a listener refused by the Sentinel retries forever
    // and never subscribes).
    let watcher = link
        .watch_sentinels(Follow::Promotion, || {})
        .expect("a Sentinel target has a watcher");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = sentinel.subscriptions().await;
        if n == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher holds {n} subscriptions on the Sentinel, not 3"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_login_fails_naming_authentication() {
    let (_master, sentinel) = topology().await;
    let cases = [
        (
            "a wrong Sentinel password",
            RedisAuth {
                sentinel_password: Some("not-the-sentinel-password".into()),
                ..right_auth()
            },
        ),
        (
            "no Sentinel password",
            RedisAuth {
                sentinel_password: None,
                ..right_auth()
            },
        ),
        (
            "the data-node password without its username",
            RedisAuth {
                username: None,
                ..right_auth()
            },
        ),
    ];
    for (what, auth) in cases {
        let e = ping(&link(&sentinel, auth))
            .await
            .expect_err(&format!("{what} must not reach the master"));
        let text = e.to_string();
        assert!(
            matches!(e, LinkError::NoMaster { .. }),
            "{what}: not NoMaster: {text}"
        );
        assert!(
            text.to_lowercase().contains("authentication"),
            "{what}: the error does not say authentication: {text}"
        );
    }
}
