//! A remote MCP server on the fake authorization server, at `{base}/mcp`:
//! Streamable HTTP (JSON-RPC over POST, answered as JSON or as an SSE
//! stream; `Mcp-Session-Id`; a GET stream; DELETE ends a session), guarded
//! as the MCP authorization spec says: no token or an expired, revoked or
//! foreign one gets `401` with `WWW-Authenticate: Bearer resource_metadata=`,
//! a token for another resource (its audience) too, and a tool that needs a
//! scope the token lacks gets `403 insufficient_scope`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::fake_oauth::Shared;

/// What the fake MCP server saw and holds.
#[derive(Debug, Default)]
pub struct McpState {
    /// Live sessions.
    pub sessions: Vec<String>,
    /// Sessions ended with DELETE.
    pub deleted: Vec<String>,
    /// Every JSON-RPC method received with the bearer token it came with.
    pub calls: Vec<(String, String)>,
    /// Requests refused with 401.
    pub unauthorized: u32,
    /// The tokens refused with 401, in order.
    pub refused: Vec<String>,
    /// `MCP-Protocol-Version` headers seen after initialization.
    pub protocol_versions: Vec<String>,
    /// GET streams opened.
    pub get_streams: u32,
    /// Answer `tools/call` as an SSE stream (the default is JSON).
    pub sse: bool,
    /// The scope the `admin` tool asks for (`admin` when empty): a hostile
    /// server may put anything there.
    pub admin_scope: String,
    /// Static API keys the server also takes (`Authorization: Bearer KEY`),
    /// as servers such as Linear's do.
    pub api_keys: Vec<String>,
    next: u32,
}

fn unauthorized(base: &str, error: Option<&str>) -> Response {
    let mut challenge = format!(
        "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\", scope=\"read write\""
    );
    if let Some(e) = error {
        challenge.push_str(&format!(", error=\"{e}\""));
    }
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        "unauthorized",
    )
        .into_response()
}

/// The bearer token of a request, if it is live and meant for this server.
#[allow(clippy::result_large_err)]
fn check_token(s: &Shared, base: &str, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let mut st = s.lock().unwrap();
    let Some(token) = token else {
        st.mcp.unauthorized += 1;
        return Err(unauthorized(base, None));
    };
    let resource = format!("{base}/mcp");
    let ok = st.mcp.api_keys.contains(&token)
        || st
            .token_resource
            .get(&token)
            .is_some_and(|r| r.as_deref() == Some(&resource))
            && !st.revoked.iter().any(|(_, t)| *t == token)
            && st
                .token_expiry
                .get(&token)
                .is_none_or(|at| std::time::Instant::now() < *at);
    if !ok {
        st.mcp.unauthorized += 1;
        st.mcp.refused.push(token);
        return Err(unauthorized(base, Some("invalid_token")));
    }
    Ok(token)
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// `POST {base}/mcp`.
pub async fn post(
    State((s, base)): State<(Shared, String)>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let token = match check_token(&s, &base, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let method = msg["method"].as_str().unwrap_or_default().to_string();
    let id = msg.get("id").cloned();
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut st = s.lock().unwrap();
    st.mcp.calls.push((method.clone(), token));
    if method == "initialize" {
        st.mcp.next += 1;
        let sid = format!("session-{}", st.mcp.next);
        st.mcp.sessions.push(sid.clone());
        let answer = rpc_result(
            id.as_ref().unwrap_or(&Value::Null),
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake-mcp", "version": "1.0.0"},
            }),
        );
        return ([("mcp-session-id", sid)], axum::Json(answer)).into_response();
    }
    match &session {
        Some(sid) if st.mcp.sessions.contains(sid) => {}
        Some(_) => return (StatusCode::NOT_FOUND, "no such session").into_response(),
        None => return (StatusCode::BAD_REQUEST, "Mcp-Session-Id is required").into_response(),
    }
    if let Some(v) = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
    {
        st.mcp.protocol_versions.push(v.to_string());
    }
    let Some(id) = id else {
        // A notification.
        return StatusCode::ACCEPTED.into_response();
    };
    let answer = match method.as_str() {
        "tools/list" => rpc_result(
            &id,
            json!({"tools": [
                {"name": "echo", "description": "Says it back",
                 "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
                {"name": "admin", "description": "Needs the admin scope",
                 "inputSchema": {"type": "object"}},
            ]}),
        ),
        "tools/call" => {
            let name = msg["params"]["name"].as_str().unwrap_or_default();
            if name == "admin" {
                let scope = if st.mcp.admin_scope.is_empty() {
                    "admin".to_string()
                } else {
                    st.mcp.admin_scope.clone()
                };
                return (
                    StatusCode::FORBIDDEN,
                    [(
                        "www-authenticate",
                        format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                    )],
                    "insufficient scope",
                )
                    .into_response();
            }
            let text = msg["params"]["arguments"]["text"]
                .as_str()
                .unwrap_or_default();
            rpc_result(
                &id,
                json!({"content": [{"type": "text", "text": format!("echo: {text}")}]}),
            )
        }
        "ping" => rpc_result(&id, json!({})),
        _ => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no such method"}})
        }
    };
    if st.mcp.sse && method == "tools/call" {
        // A progress notification first, then the answer.
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 1}});
        let body =
            format!("event: message\ndata: {progress}\n\nevent: message\ndata: {answer}\n\n");
        return ([("content-type", "text/event-stream")], body).into_response();
    }
    axum::Json(answer).into_response()
}

/// `GET {base}/mcp`: the stream for messages the server starts; this one
/// sends one notification and ends.
pub async fn get(State((s, base)): State<(Shared, String)>, headers: HeaderMap) -> Response {
    if let Err(r) = check_token(&s, &base, &headers) {
        return r;
    }
    s.lock().unwrap().mcp.get_streams += 1;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    (
        [("content-type", "text/event-stream")],
        format!("event: message\ndata: {note}\n\n"),
    )
        .into_response()
}

/// `DELETE {base}/mcp`: ends the session.
pub async fn delete(State((s, base)): State<(Shared, String)>, headers: HeaderMap) -> Response {
    if let Err(r) = check_token(&s, &base, &headers) {
        return r;
    }
    let sid = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut st = s.lock().unwrap();
    st.mcp.sessions.retain(|x| *x != sid);
    st.mcp.deleted.push(sid);
    StatusCode::OK.into_response()
}
