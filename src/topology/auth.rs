//! How the harness logs in to a topology's nodes: data nodes and Sentinels apart (a
//! Sentinel's `requirepass` is its own), each with an optional ACL user.

use super::spec::NodeKind;

/// `AUTH [username] password` for one kind of node; both empty: no AUTH.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Login {
    /// ACL user (`None`: the default user).
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
}

impl Login {
    /// A password for the default user (or nothing).
    pub fn password(password: Option<String>) -> Self {
        Self {
            username: None,
            password,
        }
    }

    /// No AUTH.
    pub fn none() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A topology's credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Master and replicas.
    pub data: Login,
    /// Sentinels.
    pub sentinel: Login,
}

impl Credentials {
    /// The same logins, as the membership API's link takes them.
    pub fn redis_auth(&self) -> membership::RedisAuth {
        membership::RedisAuth {
            username: self.data.username.clone(),
            password: self.data.password.clone(),
            sentinel_username: self.sentinel.username.clone(),
            sentinel_password: self.sentinel.password.clone(),
        }
    }

    /// The login of a node of `kind`.
    pub fn for_kind(&self, kind: NodeKind) -> &Login {
        match kind {
            NodeKind::Sentinel => &self.sentinel,
            _ => &self.data,
        }
    }
}
