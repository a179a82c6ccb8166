//! The OpenID Connect relying party: discovery, the authorization-code flow with PKCE (S256),
//! `state` and `nonce`, and ID-token validation (signature and algorithm, exact issuer,
//! audience, expiry, nonce) by the `openidconnect` crate.

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Role};

/// Claims beyond the standard ones; the groups claim is named in configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub struct Provider {
    client: OidcClient,
    http: reqwest::Client,
    end_session: Option<EndSessionUrl>,
    client_id: ClientId,
    groups_claim: String,
}

/// What the pre-login session keeps between the redirect and the callback. Used once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go afterwards: always a relative path.
    pub next: String,
    /// When a re-confirmation (`max_age=0`) was asked for: the provider's `auth_time` must
    /// then be present and not older than this.
    #[serde(default)]
    pub step_up_started_at: Option<DateTime<Utc>>,
}

/// How far the provider's clock may be ahead of ours.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(60);

/// When the person signed in, as the token vouches for it. A re-confirmation needs the
/// provider's own `auth_time`, after the re-confirmation began; no time may be in the future.
fn vouched_auth_time(
    auth_time: Option<DateTime<Utc>>,
    issued: DateTime<Utc>,
    step_up_started_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, SignInError> {
    let invalid = |why: &str| Err(SignInError::InvalidToken(why.to_owned()));
    if issued > now + CLOCK_SKEW {
        return invalid("it was issued in the future");
    }
    let at = match (auth_time, step_up_started_at) {
        (Some(at), _) => at,
        (None, Some(_)) => return invalid("the provider did not say when the person signed in again (auth_time)"),
        // Without a re-confirmation the issue time is the latest moment the token vouches for.
        (None, None) => issued,
    };
    if at > now + CLOCK_SKEW {
        return invalid("its auth_time is in the future");
    }
    if step_up_started_at.is_some_and(|started| at < started - CLOCK_SKEW) {
        return invalid(
            "the provider did not ask the person to sign in again (auth_time is before the re-confirmation)",
        );
    }
    Ok(at)
}

/// A person the provider vouched for.
#[derive(Clone, Debug)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: String,
    pub groups: Vec<String>,
    pub auth_time: DateTime<Utc>,
}

/// Why a sign-in was refused; shown to the person and written to the audit log.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the sign-in provider cannot be reached")]
    ProviderUnavailable,
    #[error("the code could not be exchanged: {0}")]
    Exchange(String),
    #[error("the provider sent no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
}

impl Provider {
    pub async fn discover(config: &Config) -> anyhow::Result<Self> {
        let issuer = config.oidc.issuer_url.clone().ok_or_else(|| anyhow::anyhow!("oidc.issuer_url is not set"))?;
        let client_id = config.oidc.client_id.clone().ok_or_else(|| anyhow::anyhow!("oidc.client_id is not set"))?;
        // The provider must not redirect us anywhere (SSRF); the SDK expects that policy.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let metadata = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(issuer)?, &http).await?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let client_id = ClientId::new(client_id);
        let client = OidcClient::from_provider_metadata(
            metadata,
            client_id.clone(),
            config.oidc.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(format!("{}/auth/callback", config.base_url()))?);
        Ok(Self { client, http, end_session, client_id, groups_claim: config.oidc.groups_claim.clone() })
    }

    /// The provider URL to send the browser to. `max_age` asks for a fresh sign-in (step-up).
    pub fn authorize(
        &self,
        next: String,
        max_age: Option<std::time::Duration>,
    ) -> (openidconnect::url::Url, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if let Some(age) = max_age {
            request = request.set_max_age(age).add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
            step_up_started_at: max_age.map(|_| Utc::now()),
        };
        (url, pending)
    }

    /// Exchange the code and validate the ID token against the pending login.
    pub async fn finish(&self, code: String, pending: &PendingLogin) -> Result<Identity, SignInError> {
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(_) => SignInError::ProviderUnavailable,
                other => SignInError::Exchange(other.to_string()),
            })?;
        let id_token = tokens.id_token().ok_or(SignInError::NoIdToken)?;
        let claims = id_token
            .claims(&self.client.id_token_verifier(), &Nonce::new(pending.nonce.clone()))
            .map_err(|e| SignInError::InvalidToken(e.to_string()))?;
        let groups = match claims.additional_claims().claims.get(&self.groups_claim) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect()
            }
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => vec![],
        };
        let auth_time =
            vouched_auth_time(claims.auth_time(), claims.issue_time(), pending.step_up_started_at, Utc::now())?;
        let email = claims.email().map(|e| e.to_string());
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .or_else(|| email.clone())
            .unwrap_or_else(|| claims.subject().to_string());
        Ok(Identity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email,
            name,
            groups,
            auth_time,
        })
    }

    /// The provider's end-session URL, when it has one.
    pub fn logout_url(&self, return_to: &str) -> Option<openidconnect::url::Url> {
        let end = self.end_session.clone()?;
        let mut request = LogoutRequest::from(end).set_client_id(self.client_id.clone());
        if let Ok(url) = PostLogoutRedirectUrl::new(return_to.to_owned()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        Some(request.http_get_url())
    }
}

/// Map provider groups to console roles through `[oidc.roles]`; unknown groups give nothing.
pub fn roles_for(config: &Config, groups: &[String]) -> Vec<Role> {
    let mut roles: Vec<Role> = groups.iter().filter_map(|g| config.oidc.roles.get(g).copied()).collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_confirmation_needs_a_fresh_auth_time_from_the_provider() {
        let now = Utc::now();
        let started = now - chrono::Duration::seconds(30);
        let fresh = now - chrono::Duration::seconds(5);
        assert_eq!(vouched_auth_time(Some(fresh), now, Some(started), now).ok(), Some(fresh));
        // The provider ignored max_age: no auth_time, or the old sign-in's.
        assert!(vouched_auth_time(None, now, Some(started), now).is_err(), "iat does not stand in");
        let old = now - chrono::Duration::hours(3);
        assert!(vouched_auth_time(Some(old), now, Some(started), now).is_err());
    }

    #[test]
    fn times_in_the_future_are_refused() {
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(10);
        assert!(vouched_auth_time(Some(later), now, None, now).is_err());
        assert!(vouched_auth_time(None, later, None, now).is_err(), "nor a future iat standing in");
        let slightly = now + chrono::Duration::seconds(20);
        assert_eq!(vouched_auth_time(Some(slightly), now, None, now).ok(), Some(slightly), "within clock skew");
        assert_eq!(vouched_auth_time(None, now, None, now).ok(), Some(now), "iat stands in outside step-up");
    }
}
