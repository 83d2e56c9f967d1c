use std::{net::IpAddr, sync::LazyLock};

use chrono::{DateTime, Utc};
use diesel::Connection;
use poem::Request;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi, Tags};
use shop_db::{
    models::{NewCustomerSession, NewLoginAttempt},
    Database, DbError,
};
use shop_telemetry::ErrorBody;

use super::{db_failure, db_failure_into};
use crate::{
    auth::{NewToken, Sessions},
    client_ip::ClientIp,
    login_gate::{Admitted, LoginGate, Overloaded, RETRY_AFTER},
    password, store,
};

/// Verified when the email is unknown, so a login takes as long whether or not it exists.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    "$argon2id$v=19$m=4096,t=2,p=1$xU1WCWrPgfvLtJVmoQmDlQ$7DDo8yDQLx8opaH+STCoQH8bwRpsHmXzjH/STuXbJeE".to_owned()
});

#[derive(Tags)]
enum ApiTags {
    /// Customer logins.
    Login,
}

pub struct LoginApi {
    db: Database,
    sessions: Sessions,
    client_ip: ClientIp,
    gate: LoginGate,
}

impl LoginApi {
    pub fn new(db: Database, sessions: Sessions, client_ip: ClientIp, gate: LoginGate) -> Self {
        Self {
            db,
            sessions,
            client_ip,
            gate,
        }
    }
}

#[derive(Debug, Clone, Object)]
struct Credentials {
    #[oai(validator(min_length = 3, max_length = 254))]
    email: String,
    #[oai(validator(min_length = 1, max_length = 1024))]
    password: String,
}

#[derive(Debug, Clone, Object)]
struct LoggedIn {
    customer_id: i32,
    email: String,
    name: String,
    /// Send it as `Authorization: Bearer <session_token>` to order as this customer and to
    /// read the customer's orders. Shown only here; the API keeps only its hash.
    session_token: String,
    /// When the session ends (`--session-ttl` after the login).
    expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "bad_login")]
enum LoginResponse {
    #[oai(status = 200)]
    Ok(Json<LoggedIn>),
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Unknown email or wrong password (the answer does not say which).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Too many logins are being checked at once: this one was not checked, and is recorded
    /// as a failed attempt. Try again after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyLogins(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}
db_failure_into!(LoginResponse);

fn bad_login(err: poem::Error) -> LoginResponse {
    LoginResponse::BadRequest(Json(ErrorBody::new(err.to_string())))
}

#[OpenApi(tag = "ApiTags::Login")]
impl LoginApi {
    /// Logs a customer in and opens a session. Every attempt is recorded with the client's IP
    /// and the account the email belongs to, if any — a login refused because too many are
    /// being checked (429) too, as a failed one.
    #[oai(path = "/login", method = "post")]
    async fn login(&self, req: &Request, body: Json<Credentials>) -> LoginResponse {
        let Some(ip) = self.client_ip.of(req) else {
            return LoginResponse::BadRequest(Json(ErrorBody::new(
                "the client address is unknown",
            )));
        };
        let email = body.0.email.trim().to_lowercase();
        let password = body.0.password;
        let admitted = match self.gate.admit() {
            Ok(admitted) => admitted,
            Err(overloaded) => return self.refuse(email, ip, overloaded).await,
        };
        match self.attempt(admitted, email.clone(), password, ip).await {
            Ok(Some(logged_in)) => {
                log::info!(event = "login_succeeded", email = email.as_str(), ip:% = ip; "login succeeded for {email} from {ip}");
                LoginResponse::Ok(Json(logged_in))
            }
            Ok(None) => {
                log::warn!(event = "login_failed", reason = "invalid_credentials", email = email.as_str(), ip:% = ip; "login failed for {email} from {ip}");
                LoginResponse::Unauthorized(Json(ErrorBody::new("invalid email or password")))
            }
            Err(err) => db_failure(err, "recording a login").into(),
        }
    }
}

impl LoginApi {
    /// A login the gate refused, recorded and logged as a failed attempt (against the
    /// account its email belongs to, if any), so the brute-force and credential-stuffing
    /// rules count a flood, and answered 429.
    async fn refuse(&self, email: String, ip: IpAddr, overloaded: Overloaded) -> LoginResponse {
        let recorded_email = email.clone();
        let recorded = self
            .db
            .run(move |conn| {
                store::customers::record_refused_attempt(
                    conn,
                    &recorded_email,
                    store::customers::host_net(ip),
                )
            })
            .await;
        log::warn!(
            event = "login_failed", reason = "overloaded", email = email.as_str(), ip:% = ip;
            "login refused for {email} from {ip}: {overloaded}"
        );
        match recorded {
            Ok(()) => LoginResponse::TooManyLogins(
                Json(ErrorBody::new(format!(
                    "{overloaded}; try again in {} s",
                    RETRY_AFTER.as_secs()
                ))),
                RETRY_AFTER.as_secs(),
            ),
            Err(err) => db_failure(err, "recording a refused login").into(),
        }
    }

    async fn attempt(
        &self,
        admitted: Admitted,
        email: String,
        password: String,
        ip: IpAddr,
    ) -> Result<Option<LoggedIn>, DbError> {
        let lookup_email = email.clone();
        let customer = self
            .db
            .run(move |conn| store::customers::customer_by_email(conn, &lookup_email))
            .await?;
        let hash = customer
            .as_ref()
            .map(|c| c.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.clone());
        // Hashing is CPU work and 4 MiB: on the blocking pool, as many at once as the gate
        // lets run, each in its hasher's memory.
        let password_ok = admitted
            .run(move |memory| password::verify(password.as_bytes(), &hash, memory))
            .await?;
        let success = password_ok && customer.is_some();
        let customer_id = customer.as_ref().map(|c| c.id);
        let session = success.then(NewToken::generate);
        let session_hash = session.as_ref().map(|s| s.hash);
        let expires_at = self.sessions.expiry();
        // The attempt and the session are one transaction: no session without its record.
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    store::customers::record_attempt(
                        conn,
                        &NewLoginAttempt {
                            email: &email,
                            ip_address: store::customers::host_net(ip),
                            success,
                            customer_id,
                        },
                    )?;
                    if let (Some(customer_id), Some(hash)) = (customer_id, session_hash) {
                        store::sessions::create(
                            conn,
                            &NewCustomerSession {
                                customer_id,
                                token_hash: &hash,
                                expires_at,
                            },
                        )?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(match (customer, session) {
            (Some(c), Some(session)) => Some(LoggedIn {
                customer_id: c.id,
                email: c.email,
                name: c.name,
                session_token: session.token,
                expires_at,
            }),
            _ => None,
        })
    }
}
