//! The Microsoft Entra-compatible sign-in endpoints at the server root, enough for MSAL and
//! `azure-identity`'s `ClientSecretCredential` with `authority="https://HOST:PORT"`:
//! OpenID discovery per tenant and the client-credentials token endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

use super::error::OAuthError;
use super::reports::base_url;
use super::{ApiError, AppState};
use crate::auth::AppIdentity;
use crate::auth::apps::{self, CredentialError};
use crate::model::TenantId;

/// Lifetime of tokens from the token endpoint (as Entra's default app tokens).
const TOKEN_TTL: Duration = Duration::from_secs(3599);
/// Scopes MSAL may add that say nothing about the resource.
const RESERVED_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub async fn openid_configuration(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let raw = first_segment(uri.path());
    let tid = TenantId::parse(raw)
        .ok_or_else(|| ApiError::BadRequest(format!("'{raw}' is not a valid tenant id.")))?;
    let base = base_url(&state, &headers);
    let doc = json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "grant_types_supported": ["client_credentials"],
        "tenant_region_scope": null,
        "cloud_instance_name": "reportroot",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": base.trim_start_matches("https://").trim_start_matches("http://"),
    });
    Ok(Json(doc).into_response())
}

/// `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`.
pub async fn token(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let correlation = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_string);
    match issue(&state, req).await {
        Ok(r) => r,
        Err(e) => e.with_correlation(correlation).into_response(),
    }
}

async fn issue(state: &Arc<AppState>, req: Request) -> Result<Response, OAuthError> {
    let tenant_raw = first_segment(req.uri().path()).to_string();
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| {
            OAuthError::invalid_request(
                900144,
                "The request body must be a form of at most 64 KiB.",
            )
        })?;
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| {
        OAuthError::invalid_request(
            900144,
            "The request body must be application/x-www-form-urlencoded.",
        )
    })?;
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

    let grant = field("grant_type").ok_or_else(|| {
        OAuthError::invalid_request(
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    })?;
    if grant != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type(format!(
            "The provided value for the input parameter 'grant_type' is not valid: '{grant}'. Only client_credentials is supported."
        )));
    }
    // client_secret_basic: Authorization: Basic base64(client_id:client_secret).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let client_id = field("client_id")
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .ok_or_else(|| {
            OAuthError::invalid_request(
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        })?;
    let secret = field("client_secret")
        .or_else(|| basic.as_ref().map(|b| b.1.clone()))
        .ok_or_else(|| {
            OAuthError::invalid_client(
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            )
        })?;
    let tid = TenantId::parse(&tenant_raw).ok_or_else(|| {
        OAuthError::invalid_request(90002, format!("Tenant '{tenant_raw}' not found."))
    })?;

    let scope = field("scope").unwrap_or_default();
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !RESERVED_SCOPES.iter().any(|r| r.eq_ignore_ascii_case(s)))
        .collect();
    let [requested] = scopes[..] else {
        return Err(OAuthError::invalid_scope(format!(
            "The provided value for scope '{scope}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        )));
    };
    let Some(resource) = requested.strip_suffix("/.default") else {
        return Err(OAuthError::invalid_scope(format!(
            "The provided value for scope '{requested}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        )));
    };
    let resource = resource.trim_end_matches('/');
    // This server's own URL is a resource too: clients that derive the scope from the Graph
    // URL they were given (`https://HOST:PORT/.default`) get a token for it.
    let base = base_url(state, &headers);
    let Some(audience) = state.verifier.audience_for(resource, &base) else {
        return Err(OAuthError::invalid_resource(format!(
            "The resource principal named {resource} was not found in the tenant named {tid}. This can happen if the application has not been installed by the administrator of the tenant."
        )));
    };

    let at = apps::AppsAt::for_store(&state.settings.data_dir, state.registry.store());
    let (t, c, s) = (tid.to_string(), client_id.clone(), secret);
    let checked = tokio::task::spawn_blocking(move || apps::authenticate(&at, &t, &c, &s))
        .await
        .map_err(|e| OAuthError::server_error(e.to_string()))?
        .map_err(|e| OAuthError::server_error(e.to_string()))?;
    let app = match checked {
        Ok(app) => app,
        Err(CredentialError::UnknownClient) => {
            return Err(OAuthError::unauthorized_client(format!(
                "Application with identifier '{client_id}' was not found in the directory '{tid}'."
            )));
        }
        Err(CredentialError::WrongSecret) => {
            return Err(OAuthError::invalid_client(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        }
    };
    let identity = AppIdentity {
        client_id: &app.client_id,
        display_name: &app.name,
    };
    let token = state
        .verifier
        .authority()
        .mint_app_for(
            &base,
            &audience,
            tid.as_str(),
            &identity,
            &app.roles,
            TOKEN_TTL,
        )
        .map_err(|e| OAuthError::server_error(e.to_string()))?;
    tracing::info!(tenant = %tid, client_id = %app.client_id, audience = %audience, "token issued");
    Ok((
        [
            (header::CACHE_CONTROL, "no-store, no-cache"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL.as_secs(),
            "ext_expires_in": TOKEN_TTL.as_secs(),
            "access_token": token,
        })),
    )
        .into_response())
}
