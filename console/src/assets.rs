//! The single-page console (HTML, JS, CSS), embedded at compile time: a node needs no files
//! and no internet to serve it.

/// `GET /`.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// `GET /assets/app.js`.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// `GET /assets/app.css`.
pub const APP_CSS: &str = include_str!("../assets/app.css");

/// The Content-Security-Policy every console answer carries: the page loads only its own
/// script, style and images, and may not be framed.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";
