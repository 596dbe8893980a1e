//! One-time bridge pages: the form a headless daemon serves in the browser
//! to collect an API key or client credentials, the launch URLs that lead a
//! browser into a login, and the OAuth callback. A bridge page is reachable
//! only through an unguessable id, only from the browser the login was
//! launched in (its cookie), protected by a CSRF token, and gone after one
//! successful use or when the login expires.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;

use std::sync::Arc;

use crate::flows::forms::{BridgeForm, Callback};
use crate::flows::launch::Cookies;
use crate::flows::LoginSession;
use crate::secret::{constant_time_eq, Secret};
use crate::services::Services;

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1d2330}\
h1{font-size:1.4rem}label{display:block;margin:1rem 0 .3rem;font-weight:600}\
input{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem}\
.err{color:#a40000;background:#fff0f0;padding:.6rem;border-radius:4px}.muted{color:#5b6270;font-size:.9rem}\
code{background:#f1f3f6;padding:.1rem .3rem}";

fn page_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    page_response(
        status,
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>Authsome</title><style>{STYLE}</style></head>\
             <body><h1>{}</h1><p>{}</p></body></html>",
            escape(title),
            escape(text)
        ),
    )
}

fn gone() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "This page has expired",
        "Bridge pages work once and only while the login waits. Run `authsome login` again.",
    )
}

fn form(session: &LoginSession, daemon: &Services, error: Option<&str>) -> String {
    let def = &session.provider;
    let bridge = session.bridge.as_ref().expect("bridge session");
    let mut fields = String::new();
    for f in &session.fields {
        let kind = if f.secret { "password" } else { "text" };
        fields.push_str(&format!(
            "<label for=\"{n}\">{l}</label><input id=\"{n}\" name=\"{n}\" type=\"{kind}\" autocomplete=\"off\"{req}>",
            n = escape(&f.name),
            l = escape(&f.label),
            req = if f.optional { "" } else { " required" }
        ));
        if let Some(hint) = &f.hint {
            fields.push_str(&format!("<p class=muted>{}</p>", escape(hint)));
        }
    }
    let docs = def
        .docs_url
        .as_ref()
        .map(|u| {
            format!(
                "<p class=muted>Get it at <a href=\"{0}\" target=_blank rel=noopener>{0}</a></p>",
                escape(u)
            )
        })
        .unwrap_or_default();
    let callback = if def.auth_type == crate::providers::AuthType::OAuth2 {
        format!(
            "<p class=muted>Register this callback URL with the provider: <code>{}</code></p>",
            escape(&daemon.callback_url())
        )
    } else {
        String::new()
    };
    let err = error
        .map(|e| format!("<p class=err>{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Authsome: connect {name}</title><style>{STYLE}</style></head>\
         <body><h1>Connect {name}</h1><p>Connection <code>{conn}</code>. The value goes straight to the Authsome daemon on this machine and is stored encrypted.</p>\
         {docs}{callback}{err}<form method=post action=\"/bridge/{id}\"><input type=hidden name=csrf value=\"{csrf}\">{fields}\
         <button type=submit>Save</button></form></body></html>",
        name = escape(&def.display_name),
        conn = escape(session.connection.as_str()),
        id = escape(&bridge.id),
        csrf = escape(&bridge.csrf),
    )
}

fn cookies(headers: &HeaderMap) -> Cookies {
    Cookies::parse(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

fn other_browser() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Open the link Authsome gave you",
        "This page opens only in the browser that Authsome opened for the login, or through the one-time link `authsome login` printed. Nothing was changed.",
    )
}

/// `GET /bridge/launch/{token}`: the one-time way into a login. Sends the
/// browser on to the login's page and, where the login ends back here,
/// binds the browser to it with a cookie.
pub async fn launch(State(daemon): State<Arc<Services>>, Path(token): Path<String>) -> Response {
    let Some((target, cookie)) = daemon.logins().claim_launch(&token) else {
        return message_page(
            StatusCode::NOT_FOUND,
            "This link was already used",
            "A login link works once and only while the login waits. If you did not open it, someone else may have: run `authsome login` again.",
        );
    };
    let mut resp = page_response(StatusCode::SEE_OTHER, String::new());
    let h = resp.headers_mut();
    match HeaderValue::from_str(&target) {
        Ok(v) => h.insert(header::LOCATION, v),
        Err(_) => {
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Login failed",
                "The login's address is not valid.",
            )
        }
    };
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /bridge/{id}`.
pub async fn page(
    State(daemon): State<Arc<Services>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match daemon.logins().registry().by_bridge(&id) {
        Some(session) if session.browser.holds(&cookies(&headers)) => {
            page_response(StatusCode::OK, form(&session, &daemon, None))
        }
        Some(_) => other_browser(),
        None => gone(),
    }
}

/// `POST /bridge/{id}`: a form post from the page itself.
pub async fn submit(
    State(daemon): State<Arc<Services>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(session) = daemon.logins().registry().by_bridge(&id) else {
        return gone();
    };
    if !session.browser.holds(&cookies(&headers)) {
        return other_browser();
    }
    // The guard already refuses foreign Origins; a form post must also come
    // from a page (browsers send Origin on POST), not from a script elsewhere.
    if headers.get(header::ORIGIN).is_none() && headers.get(header::REFERER).is_none() {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form must be sent from the Authsome page.",
        );
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let parsed = body
        .map_err(|e| crate::Error::InvalidInput(e.body_text()))
        .and_then(|b| BridgeForm::parse(&b));
    let submitted = match parsed {
        Ok(form) if is_form => form,
        _ => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "Refused",
                "The form could not be read.",
            )
        }
    };
    let BridgeForm { csrf, mut values } = submitted;
    let expected = &session.bridge.as_ref().expect("bridge session").csrf;
    if !constant_time_eq(&csrf, expected) {
        return message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form's security token does not match. Reload the page.",
        );
    }
    let inputs: BTreeMap<String, Secret> = session
        .fields
        .iter()
        .filter_map(|f| values.remove(&f.name).map(|v| (f.name.clone(), v)))
        .collect();
    match daemon
        .logins()
        .submit_login_input(&session.id, &inputs)
        .await
    {
        Ok(_) => message_page(
            StatusCode::OK,
            &format!("{} is connected", session.provider.display_name),
            "You can close this tab and return to your terminal.",
        ),
        Err(e @ (crate::Error::KeyPattern { .. } | crate::Error::InvalidInput(_)))
            if !session.is_finished() =>
        {
            page_response(
                StatusCode::BAD_REQUEST,
                form(&session, &daemon, Some(&e.to_string())),
            )
        }
        Err(e) => message_page(e.status(), "Login failed", &e.to_string()),
    }
}

/// `GET /auth/callback/oauth`: where the provider sends the browser back.
pub async fn oauth_callback(
    State(daemon): State<Arc<Services>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let cookies = cookies(&headers);
    let result = match Callback::parse(query.as_deref().unwrap_or("")) {
        Ok(callback) => daemon.logins().handle_callback(callback, &cookies).await,
        Err(e) => {
            daemon.logins().reject_callback(&e, &cookies);
            Err(e)
        }
    };
    match result {
        Ok(session) => message_page(
            StatusCode::OK,
            &format!(
                "Logged in to {} ({})",
                session.provider.display_name, session.connection
            ),
            "Authsome stored the credential. You can close this tab and return to your terminal.",
        ),
        Err(e) => message_page(e.status(), "Login failed", &format!("Error: {e}")),
    }
}
