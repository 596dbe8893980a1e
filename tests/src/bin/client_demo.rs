//! A program that is not `authsome` using `authsome-client` the way agent
//! code does: `authsome-client-demo PROVIDER` prints the length of the
//! provider's credential and its header names (never a value), or the
//! error's code and exit code.

fn main() {
    let provider = std::env::args().nth(1).unwrap_or_else(|| "openai".into());
    let result = authsome_client::Client::from_env().and_then(|c| {
        let token = c.get_access_token(&provider, "default")?;
        let headers = c.auth_headers(&provider, "default")?;
        Ok((
            token.expose().len(),
            headers.headers.into_keys().collect::<Vec<_>>(),
        ))
    });
    match result {
        Ok((len, names)) => println!("ok {len} {}", names.join(",")),
        Err(e) => {
            println!("error {} {}", e.code(), e.exit_code());
            std::process::exit(e.exit_code());
        }
    }
}
