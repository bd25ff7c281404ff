//! Configuration from environment variables, with the names and defaults of the seeds.

use std::time::Duration;

use serde::Serialize;

use crate::cache::link::RedisAuth;

/// A variable holds a value that breaks its rule.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}={value:?}: {rule}")]
pub struct ConfigError {
    /// Variable name.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// The rule it breaks.
    pub rule: String,
}

/// Time-to-live per cache configuration, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheTtls {
    /// CACHE_STATISTICS_TTL (1800).
    pub statistics: u64,
    /// CACHE_ANALYTICS_TTL (3600).
    pub analytics: u64,
    /// CACHE_ANALYTICS_LONG_TTL (7200), for `analytics/comprehensive`.
    pub analytics_long: u64,
    /// CACHE_MEMBER_TTL (900).
    pub member: u64,
    /// CACHE_MEMBER_LONG_TTL (3600), for `members/by-id-number/:id_number`.
    pub member_long: u64,
    /// CACHE_LOOKUP_TTL (86400).
    pub lookup: u64,
    /// REDIS_DEFAULT_TTL (1800): for cached routes without a type of their own.
    pub default: u64,
}

/// How to reach Redis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RedisTarget {
    /// REDIS_HOST / REDIS_PORT.
    Standalone {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// REDIS_SENTINELS / REDIS_MASTER_NAME.
    Sentinel {
        /// `(host, port)` of each Sentinel.
        sentinels: Vec<(String, u16)>,
        /// Monitored master name.
        master_name: String,
    },
}

/// Everything the API reads from its environment.
#[derive(Debug, Clone, Serialize)]
pub struct ApiConfig {
    /// HOST (127.0.0.1).
    pub host: String,
    /// PORT (5000).
    pub port: u16,
    /// DATABASE_URL (sqlite://membership.db).
    pub database_url: String,
    /// MEMBERSHIP_MEMBERS (50301): members generated into an empty database.
    pub members: u64,
    /// MEMBERSHIP_SEED: generator seed.
    pub seed: u64,
    /// Redis target.
    pub redis: RedisTarget,
    /// How the link logs in (none by default): REDIS_USERNAME / REDIS_PASSWORD on data
    /// nodes, REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD on Sentinels. A username
    /// needs its password (`AUTH` always takes one).
    #[serde(skip)]
    pub redis_auth: RedisAuth,
    /// REDIS_DB (0).
    pub redis_db: i64,
    /// REDIS_KEY_PREFIX (membership:).
    pub key_prefix: String,
    /// REDIS_TIMEOUT_MS (250): connect and command timeout; bounds the extra delay a dead
    /// or slow Redis adds to a request.
    pub redis_timeout: Duration,
    /// CACHE_ENABLED (true).
    pub cache_enabled: bool,
    /// TTLs.
    pub ttls: CacheTtls,
    /// CACHE_COMPRESS_THRESHOLD (1024): values above this many bytes are stored LZ4-compressed.
    pub compress_threshold: usize,
    /// CACHE_ADMIN_TOKEN: bearer token of the management API (disabled when unset).
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// CACHE_WARMUP (true): warm the critical endpoints at start.
    pub warmup_on_start: bool,
    /// CACHE_HONOR_NO_CACHE (false): a request with `Cache-Control: no-cache` recomputes
    /// and re-stores its entry (a MISS) instead of reading it.
    pub honor_no_cache: bool,
    /// CACHE_BREAKER_THRESHOLD (3): consecutive Redis failures that open the breaker.
    pub breaker_threshold: u32,
    /// CACHE_BREAKER_COOLDOWN_MS (1000): how long the breaker stays open.
    pub breaker_cooldown: Duration,
    /// SHUTDOWN_GRACE_MS (10000): after a shutdown signal, how long requests in flight may
    /// finish before the server stops anyway. Connections without a request in flight are
    /// closed at once; `serve` returns at most this long after the signal.
    pub shutdown_grace: Duration,
    /// HTTP_HEADER_READ_TIMEOUT_MS (5000): how long a client has to send a request's
    /// headers, counted from the accept for a connection's first request and from the first
    /// byte for later ones; then the connection is closed (slowloris clients that trickle or
    /// half-send headers). The body, once the headers are in, is not timed by this.
    pub http_header_read_timeout: Duration,
    /// HTTP_IDLE_TIMEOUT_MS (60000): how long a keep-alive connection may wait for the first
    /// byte of its next request before it is closed.
    pub http_idle_timeout: Duration,
    /// HTTP_MAX_CONNECTIONS (10000): client connections open at once, at most. Beyond it a
    /// new connection is answered `503` and closed at once (see `crate::server`). It must
    /// stay below the process's open-files limit: at start it is lowered, with a warning,
    /// to leave a reserve of descriptors for the database, Redis and the listener.
    pub http_max_connections: usize,
    /// METRICS_TOKEN: bearer token required by `GET /metrics`. Unset (or empty): the
    /// Prometheus endpoint is open, as it always was.
    #[serde(skip)]
    pub metrics_token: Option<String>,
}

impl ApiConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        fn num<T>(
            get: &dyn Fn(&str) -> Option<String>,
            var: &'static str,
            default: T,
            min: T,
        ) -> Result<T, ConfigError>
        where
            T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
        {
            match get(var) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<T>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError {
                        var,
                        value: v,
                        rule: format!("must be a whole number >= {min}"),
                    }),
                },
            }
        }
        let flag = |var: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(var).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => Err(ConfigError {
                    var,
                    value: v,
                    rule: "must be true or false".into(),
                }),
            }
        };
        let g: &dyn Fn(&str) -> Option<String> = &get;
        let redis = match get("REDIS_SENTINELS") {
            Some(list) => {
                let sentinels = list
                    .split(',')
                    .map(|s| {
                        let s = s.trim();
                        s.rsplit_once(':')
                            .and_then(|(h, p)| {
                                Some((h.to_string(), p.parse::<u16>().ok().filter(|p| *p > 0)?))
                            })
                            .filter(|(h, _)| !h.is_empty())
                            .ok_or_else(|| ConfigError {
                                var: "REDIS_SENTINELS",
                                value: list.clone(),
                                rule: format!("{s:?} is not host:port"),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RedisTarget::Sentinel {
                    sentinels,
                    master_name: get("REDIS_MASTER_NAME").unwrap_or_else(|| "mymaster".into()),
                }
            }
            None => RedisTarget::Standalone {
                host: get("REDIS_HOST").unwrap_or_else(|| "localhost".into()),
                port: num(g, "REDIS_PORT", 6379u16, 1)?,
            },
        };
        let redis_auth = RedisAuth {
            username: get("REDIS_USERNAME"),
            password: get("REDIS_PASSWORD"),
            sentinel_username: get("REDIS_SENTINEL_USERNAME"),
            sentinel_password: get("REDIS_SENTINEL_PASSWORD"),
        };
        for (var, user, password, pw_var) in [
            (
                "REDIS_USERNAME",
                &redis_auth.username,
                &redis_auth.password,
                "REDIS_PASSWORD",
            ),
            (
                "REDIS_SENTINEL_USERNAME",
                &redis_auth.sentinel_username,
                &redis_auth.sentinel_password,
                "REDIS_SENTINEL_PASSWORD",
            ),
        ] {
            if let (Some(user), None) = (user, password) {
                return Err(ConfigError {
                    var,
                    value: user.clone(),
                    rule: format!("needs {pw_var} (AUTH takes a password)"),
                });
            }
        }
        let key_prefix = get("REDIS_KEY_PREFIX").unwrap_or_else(|| "membership:".into());
        if key_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError {
                var: "REDIS_KEY_PREFIX",
                value: key_prefix,
                rule: "must not contain whitespace".into(),
            });
        }
        Ok(Self {
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: num(g, "PORT", 5000u16, 0)?,
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://membership.db".into()),
            members: num(
                g,
                "MEMBERSHIP_MEMBERS",
                crate::db::generate::DEFAULT_MEMBERS,
                1,
            )?,
            seed: num(g, "MEMBERSHIP_SEED", crate::db::generate::DEFAULT_SEED, 0)?,
            redis,
            redis_auth,
            redis_db: num(g, "REDIS_DB", 0i64, 0)?,
            key_prefix,
            redis_timeout: Duration::from_millis(num(g, "REDIS_TIMEOUT_MS", 250u64, 1)?),
            cache_enabled: flag("CACHE_ENABLED", true)?,
            ttls: CacheTtls {
                statistics: num(g, "CACHE_STATISTICS_TTL", 1800u64, 1)?,
                analytics: num(g, "CACHE_ANALYTICS_TTL", 3600u64, 1)?,
                analytics_long: num(g, "CACHE_ANALYTICS_LONG_TTL", 7200u64, 1)?,
                member: num(g, "CACHE_MEMBER_TTL", 900u64, 1)?,
                member_long: num(g, "CACHE_MEMBER_LONG_TTL", 3600u64, 1)?,
                lookup: num(g, "CACHE_LOOKUP_TTL", 86400u64, 1)?,
                default: num(g, "REDIS_DEFAULT_TTL", 1800u64, 1)?,
            },
            compress_threshold: num(g, "CACHE_COMPRESS_THRESHOLD", 1024usize, 0)?,
            admin_token: get("CACHE_ADMIN_TOKEN"),
            warmup_on_start: flag("CACHE_WARMUP", true)?,
            honor_no_cache: flag("CACHE_HONOR_NO_CACHE", false)?,
            breaker_threshold: num(g, "CACHE_BREAKER_THRESHOLD", 3u32, 1)?,
            breaker_cooldown: Duration::from_millis(num(
                g,
                "CACHE_BREAKER_COOLDOWN_MS",
                1000u64,
                1,
            )?),
            shutdown_grace: Duration::from_millis(num(g, "SHUTDOWN_GRACE_MS", 10_000u64, 0)?),
            http_header_read_timeout: Duration::from_millis(num(
                g,
                "HTTP_HEADER_READ_TIMEOUT_MS",
                5_000u64,
                1,
            )?),
            http_idle_timeout: Duration::from_millis(num(g, "HTTP_IDLE_TIMEOUT_MS", 60_000u64, 1)?),
            http_max_connections: num(g, "HTTP_MAX_CONNECTIONS", 10_000usize, 1)?,
            metrics_token: get("METRICS_TOKEN"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ApiConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_seeds() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.key_prefix, "membership:");
        assert_eq!(c.ttls.statistics, 1800);
        assert_eq!(c.ttls.analytics, 3600);
        assert_eq!(c.ttls.member, 900);
        assert_eq!(c.ttls.lookup, 86400);
        assert!(c.cache_enabled);
        assert_eq!(c.redis_auth, RedisAuth::default());
        assert_eq!(
            c.redis,
            RedisTarget::Standalone {
                host: "localhost".into(),
                port: 6379
            }
        );
    }

    #[test]
    fn sentinel_mode_and_bad_values() {
        let c = cfg(&[
            ("REDIS_SENTINELS", "127.0.0.1:26379, 127.0.0.1:26380"),
            ("REDIS_MASTER_NAME", "m"),
        ])
        .unwrap();
        assert!(
            matches!(c.redis, RedisTarget::Sentinel { ref sentinels, .. } if sentinels.len() == 2)
        );
        let e = cfg(&[("REDIS_SENTINELS", "nohost")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("REDIS_SENTINELS") && e.contains("not host:port"),
            "{e}"
        );
        let e = cfg(&[("CACHE_MEMBER_TTL", "-5")]).unwrap_err().to_string();
        assert!(e.contains("CACHE_MEMBER_TTL") && e.contains(">= 1"), "{e}");
        let e = cfg(&[("CACHE_ENABLED", "maybe")]).unwrap_err().to_string();
        assert!(e.contains("CACHE_ENABLED"), "{e}");
    }

    #[test]
    fn redis_logins_for_data_nodes_and_sentinels() {
        let c = cfg(&[
            ("REDIS_SENTINELS", "127.0.0.1:26379"),
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD", "apppw"),
            ("REDIS_SENTINEL_USERNAME", "watcher"),
            ("REDIS_SENTINEL_PASSWORD", "sentinelpw"),
        ])
        .unwrap();
        assert_eq!(
            c.redis_auth,
            RedisAuth {
                username: Some("app".into()),
                password: Some("apppw".into()),
                sentinel_username: Some("watcher".into()),
                sentinel_password: Some("sentinelpw".into()),
            }
        );
        // Secrets are neither serialized nor shown by Debug.
        let json = serde_json::to_string(&c).unwrap();
        let debug = format!("{c:?}");
        for secret in ["apppw", "sentinelpw"] {
            assert!(!json.contains(secret), "{json}");
            assert!(!debug.contains(secret), "{debug}");
        }
        // A password alone logs in as the default user; empty values are unset.
        let c = cfg(&[
            ("REDIS_PASSWORD", "pw"),
            ("REDIS_USERNAME", ""),
            ("REDIS_SENTINEL_PASSWORD", ""),
        ])
        .unwrap();
        assert_eq!(c.redis_auth, RedisAuth::password(Some("pw".into())));
        // A username without its password would be ignored: refused instead.
        for (user, pw) in [
            ("REDIS_USERNAME", "REDIS_PASSWORD"),
            ("REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_PASSWORD"),
        ] {
            let e = cfg(&[(user, "app")]).unwrap_err().to_string();
            assert!(e.contains(user) && e.contains(pw), "{e}");
        }
    }

    #[test]
    fn http_limits_and_metrics_token() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.http_header_read_timeout, Duration::from_secs(5));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http_max_connections, 10_000);
        assert_eq!(c.metrics_token, None);
        let c = cfg(&[
            ("HTTP_HEADER_READ_TIMEOUT_MS", "300"),
            ("HTTP_IDLE_TIMEOUT_MS", "2000"),
            ("HTTP_MAX_CONNECTIONS", "4"),
            ("METRICS_TOKEN", "s3cret"),
        ])
        .unwrap();
        assert_eq!(c.http_header_read_timeout, Duration::from_millis(300));
        assert_eq!(c.http_idle_timeout, Duration::from_secs(2));
        assert_eq!(c.http_max_connections, 4);
        assert_eq!(c.metrics_token.as_deref(), Some("s3cret"));
        // A secret is never serialized, like CACHE_ADMIN_TOKEN.
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert_eq!(cfg(&[("METRICS_TOKEN", "")]).unwrap().metrics_token, None);
        for (var, bad) in [
            ("HTTP_HEADER_READ_TIMEOUT_MS", "0"),
            ("HTTP_IDLE_TIMEOUT_MS", "soon"),
            ("HTTP_MAX_CONNECTIONS", "0"),
            ("HTTP_MAX_CONNECTIONS", "-1"),
        ] {
            let e = cfg(&[(var, bad)]).unwrap_err().to_string();
            assert!(e.contains(var) && e.contains(">= 1"), "{e}");
        }
    }
}
