//! What a transport that authenticates a whole connection at once (MQTT's CONNECT) asks
//! of its session: bind it to a device, or tie it to a user, with the rules the Device
//! API applies to a request's apikey (the same checks: [`DeviceApi::authorise`], and for
//! an indie device its factory license as `register` allows), the same throttle of
//! failed keys per client address, and the same token rule as `subscribe`.

use super::Session;
use crate::auth::{self, TokenRefused};
use iotgo_protocol::{Action, ApiKey, DeviceId, Echo, ErrorCode, Request, Sender};

impl Session {
    /// Binds this connection to `deviceid` when `key` is its owner's apikey, its device
    /// key, or (a claimed indie device) its factory license: the device is online
    /// (committed, its apps told) when this returns, as after a WebSocket device's first
    /// request. Gives the key the device's
    /// requests then carry (a license gives the device key, as `register` answers it).
    /// Refused: 400 (not a key), 403 (wrong key), 404 (license of an unclaimed device),
    /// 429 (the address sent too many wrong keys), 500.
    pub async fn connect_device(
        &mut self,
        deviceid: DeviceId,
        key: &str,
    ) -> Result<String, ErrorCode> {
        if !self.api.throttle.admits(self.client) {
            return Err(ErrorCode::TooManyRequests);
        }
        let apikey = ApiKey::parse(key).map_err(|_| ErrorCode::Forbidden)?;
        let req = Request {
            action: Action::Register,
            deviceid,
            apikey,
            sender: Sender::Device,
            echo: Echo::default(),
        };
        let access = match self.api.authorise(&req).await {
            Ok(access) => Ok(access),
            Err(answer)
                if answer.error == ErrorCode::Forbidden.code() && req.deviceid.is_indie() =>
            {
                match Box::pin(self.api.register(&req)).await {
                    (_, Some(access)) => Ok(access),
                    (answer, None) => Err(answer.error),
                }
            }
            Err(answer) => Err(answer.error),
        };
        let access = match access {
            Ok(access) => access,
            Err(code) => {
                let code = error_code(code);
                if code == ErrorCode::Forbidden {
                    self.api.throttle.key_refused(self.client);
                }
                return Err(code);
            }
        };
        let key = match access.by {
            crate::device::KeyKind::Owner => access.keys.owner.to_string(),
            crate::device::KeyKind::Device => access.keys.device.to_string(),
        };
        let id = req.deviceid.as_str();
        tracing::Span::current().record("deviceid", id);
        self.bound.insert(id.to_owned());
        self.connecting = self.api.device_bound(req.deviceid, access, &self.peer);
        // Online (committed, apps told) before the transport says the device connected.
        self.settle().await;
        Ok(key)
    }

    /// Ties this connection to the user named by `username` (their apikey or e-mail
    /// address) when `password` is their apikey or a signed-in token of theirs (a token
    /// cuts the connection when it expires or is retired, as with `subscribe`). Gives
    /// the user's apikey. Refused: 403, 429, 500 as [`Session::connect_device`].
    pub async fn connect_app(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<String, ErrorCode> {
        if !self.api.throttle.admits(self.client) {
            return Err(ErrorCode::TooManyRequests);
        }
        let user = self.app_user(username, password).await;
        if user == Err(ErrorCode::Forbidden) {
            self.api.throttle.key_refused(self.client);
        }
        user
    }

    async fn app_user(&mut self, username: &str, password: &str) -> Result<String, ErrorCode> {
        let api = &self.api;
        let (user, token) = match ApiKey::parse(password) {
            Ok(key) => match api.store.users().find_by_apikey(key.as_str()).await {
                Ok(Some(user)) => (user, None),
                Ok(None) => return Err(ErrorCode::Forbidden),
                Err(_) => return Err(ErrorCode::Internal),
            },
            Err(_) => match auth::signed_in_user(&api.jwt, &api.store, password).await {
                Ok(s) => {
                    let version = s.user.token_version;
                    (s.user, Some((version, s.expires)))
                }
                Err(TokenRefused::Invalid | TokenRefused::Admin) => {
                    return Err(ErrorCode::Forbidden);
                }
                Err(TokenRefused::Store(_)) => return Err(ErrorCode::Internal),
            },
        };
        let user = user.user;
        if username != user.apikey && !username.eq_ignore_ascii_case(&user.email) {
            return Err(ErrorCode::Forbidden);
        }
        if let Some((version, expires)) = token {
            // Retired since it was checked: refused as if it had been then.
            if !api.hub.hold_token(&user.apikey, version, &self.peer) {
                return Err(ErrorCode::Forbidden);
            }
            self.expires_at(expires);
        }
        tracing::Span::current().record("user", user.email.as_str());
        // Its `state` subscriptions show every change, its own `set` included.
        self.own_pushes = true;
        // Left with the hub's lists when the session ends (its token among them).
        self.users.insert(user.apikey.clone());
        Ok(user.apikey)
    }

    /// Watches every device of the user `owner`, current and future (an app's wildcard
    /// subscription).
    pub fn watch_all(&mut self, owner: &str) {
        self.is_app();
        self.api.hub.watch_user(owner, &self.peer);
        self.users.insert(owner.to_owned());
    }

    /// Whether the user `owner` owns `deviceid` (from the owner cache).
    pub async fn owns(&self, deviceid: &str, owner: &str) -> bool {
        matches!(self.api.owners.get(deviceid).await, Ok(Some(keys)) if *keys.owner == *owner)
    }
}

/// An answer's code as an [`ErrorCode`] (anything unexpected: 500).
fn error_code(code: u16) -> ErrorCode {
    [
        ErrorCode::BadRequest,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::TooManyRequests,
    ]
    .into_iter()
    .find(|c| c.code() == code)
    .unwrap_or(ErrorCode::Internal)
}
